import { z } from "zod";
import { gpuNames, type ResolvedProfile } from "./profiles.ts";

/**
 * A latency profile in a file of its own, as `batchline calibrate` writes it and a routes.yml
 * component names it (`profile: ./profiles/mine.json`, relative to the routes file). The same five
 * numbers as a shipped profile (docs/gpu-profiles.md), the KV room and footprint the routes file
 * checks token budgets against, and where the numbers came from. `fit` is what the calibration
 * measured, kept for a reader; nothing reads it back.
 */
const positive = z.number().positive();
const nonNegative = z.number().nonnegative();

export const profileFileSchema = z.strictObject({
  name: z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9._-]{0,99}$/, "letters, digits, '.', '_' and '-'"),
  gpu: z.enum(gpuNames),
  latency: z.strictObject({
    decode_base_ms: positive,
    decode_per_sequence_ms: nonNegative,
    decode_per_context_token_ms: nonNegative,
    prefill_min_ms: nonNegative,
    prefill_tokens_per_ms: positive,
    kv_capacity_tokens: z.number().int().positive(),
  }),
  footprint: z.strictObject({ weight_bytes: positive, kv_bytes_per_token: positive }),
  provenance: z.strictObject({
    gpu: z.string().min(1),
    engine: z.string().min(1),
    dtype: z.string().min(1),
    date: z.iso.date(),
    method: z.enum(["measured", "derived"]),
    source: z.string().min(1),
  }),
  fit: z.unknown().optional(),
});

export type ProfileFile = z.infer<typeof profileFileSchema>;

export function resolveProfileFile(file: ProfileFile): ResolvedProfile {
  const l = file.latency;
  return {
    latency: {
      name: file.name,
      decodeBaseMs: l.decode_base_ms,
      decodePerSequenceMs: l.decode_per_sequence_ms,
      decodePerContextTokenMs: l.decode_per_context_token_ms,
      prefillMinMs: l.prefill_min_ms,
      prefillTokensPerMs: l.prefill_tokens_per_ms,
      kvCapacityTokens: l.kv_capacity_tokens,
    },
    gpu: file.gpu,
    footprint: { weightBytes: file.footprint.weight_bytes, kvBytesPerToken: file.footprint.kv_bytes_per_token },
    provenance: file.provenance,
  };
}

/** The file of a resolved profile: what `batchline calibrate` writes, with its fit. */
export function profileFileOf(profile: ResolvedProfile, fit?: unknown): ProfileFile {
  const l = profile.latency;
  return {
    name: l.name,
    gpu: profile.gpu,
    latency: {
      decode_base_ms: l.decodeBaseMs,
      decode_per_sequence_ms: l.decodePerSequenceMs,
      decode_per_context_token_ms: l.decodePerContextTokenMs,
      prefill_min_ms: l.prefillMinMs,
      prefill_tokens_per_ms: l.prefillTokensPerMs,
      kv_capacity_tokens: l.kvCapacityTokens,
    },
    footprint: { weight_bytes: profile.footprint.weightBytes, kv_bytes_per_token: profile.footprint.kvBytesPerToken },
    provenance: profile.provenance,
    ...(fit !== undefined && { fit }),
  };
}

/** Whether a routes.yml `profile` names a file rather than a shipped profile. */
export const isProfileFileReference = (value: string): boolean => value.endsWith(".json");
