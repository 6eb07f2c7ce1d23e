/**
 * Latency profiles of one GPU copy of a model, measured on an H100 by
 * ../shared/calibration/calibrate.py. The fit is the one latency model of DESIGN.md decision 6:
 * decode step = a + c·B + b·Σctx, prefill = max(p0, prompt tokens / r).
 */
export type LatencyProfile = {
  readonly name: string;
  /** Fixed cost of one decode step (weights read once per step), ms. */
  readonly decodeBaseMs: number;
  /** Per-sequence cost of one decode step, ms. */
  readonly decodePerSequenceMs: number;
  /** Per-context-token cost of one decode step (KV cache read), ms. */
  readonly decodePerContextTokenMs: number;
  /** Shortest prefill, ms. */
  readonly prefillMinMs: number;
  /** Prefill throughput, prompt tokens per ms. */
  readonly prefillTokensPerMs: number;
  /** KV-cache room beside the weights at 90% memory use, tokens. */
  readonly kvCapacityTokens: number;
};

const profiles = {
  "llama2-7b-bf16-h100": {
    name: "llama2-7b-bf16-h100",
    decodeBaseMs: 5.95,
    decodePerSequenceMs: 0,
    decodePerContextTokenMs: 0.000174,
    prefillMinMs: 13.0,
    prefillTokensPerMs: 44.5,
    kvCapacityTokens: 112_000,
  },
  "llama3-8b-bf16-h100": {
    name: "llama3-8b-bf16-h100",
    decodeBaseMs: 6.54,
    decodePerSequenceMs: 0.0147,
    decodePerContextTokenMs: 0.0000378,
    prefillMinMs: 13.1,
    prefillTokensPerMs: 41,
    kvCapacityTokens: 430_000,
  },
  "llama3.2-1b-bf16-h100": {
    name: "llama3.2-1b-bf16-h100",
    decodeBaseMs: 1.51,
    decodePerSequenceMs: 0.0028,
    decodePerContextTokenMs: 0.0000105,
    prefillMinMs: 3.7,
    prefillTokensPerMs: 255,
    kvCapacityTokens: 2_100_000,
  },
} as const satisfies Record<string, LatencyProfile>;

export type ProfileName = keyof typeof profiles;
export const profileNames = Object.keys(profiles) as [ProfileName, ...ProfileName[]];

export function getProfile(name: ProfileName): LatencyProfile {
  return profiles[name];
}
