/**
 * Latency profiles of one GPU copy of a model. The fit is the one latency model of
 * docs/design.md, decision 6: decode step = a + c·B + b·Σctx, prefill = max(p0, prompt tokens / r).
 *
 * The H100 profiles are measurements (docs/calibration.md; tools/calibration/calibrate.py took
 * them). The A10G, A100 and FP8 profiles are derived from the Llama-2-7B H100 measurement by
 * roofline: the same fraction of each GPU's peak memory bandwidth and tensor FLOPs that the H100
 * achieved, applied to the other GPU's peaks (docs/gpu-profiles.md shows every number). Each says
 * so in its provenance. A component may instead name a profile file that `batchline calibrate`
 * fitted on its own endpoint (profile-file.ts, profile-fit.ts).
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

/** Peak figures of one GPU, dense (no sparsity): docs/gpu-profiles.md, "The GPUs", says where each comes from. */
export type GpuSpec = {
  readonly memoryBytes: number;
  readonly bandwidthBytesPerS: number;
  readonly bf16FlopsPerS: number;
  /** Hopper and later; Ampere has no FP8 tensor cores. */
  readonly fp8FlopsPerS?: number;
};

export const gpus = {
  "a10g-24gb": { memoryBytes: 24e9, bandwidthBytesPerS: 600e9, bf16FlopsPerS: 70e12 },
  "a100-40gb": { memoryBytes: 40e9, bandwidthBytesPerS: 1555e9, bf16FlopsPerS: 312e12 },
  "a100-80gb": { memoryBytes: 80e9, bandwidthBytesPerS: 2039e9, bf16FlopsPerS: 312e12 },
  "h100-80gb": { memoryBytes: 80e9, bandwidthBytesPerS: 3350e9, bf16FlopsPerS: 989e12, fp8FlopsPerS: 1979e12 },
} as const satisfies Record<string, GpuSpec>;
export type GpuName = keyof typeof gpus;
export const gpuNames = Object.keys(gpus) as [GpuName, ...GpuName[]];

/** What a model copy puts in GPU memory, for the fit checks of the routes file. */
export type ModelFootprint = { readonly weightBytes: number; readonly kvBytesPerToken: number };

/** Share of GPU memory an engine uses for weights and KV cache (vLLM's gpu_memory_utilization). */
export const GPU_MEMORY_UTILIZATION = 0.9;

const llama2_7b = { params: 6.74e9, kvBytesPerTokenBf16: 524_288 };

const h100Llama2 = {
  name: "llama2-7b-bf16-h100",
  decodeBaseMs: 5.95,
  decodePerSequenceMs: 0,
  decodePerContextTokenMs: 0.000174,
  prefillMinMs: 13.0,
  prefillTokensPerMs: 44.5,
  kvCapacityTokens: 112_000,
} as const satisfies LatencyProfile;

/**
 * What the H100 achieved on Llama-2-7B, as fractions of its peaks:
 * weights read 13.48 GB / 5.95 ms = 2.27 TB/s (67.6% of 3.35 TB/s); KV read 512 KiB / 0.000174 ms
 * = 3.01 TB/s (90.0%); prefill 44.5 tokens/ms × 13.48 GFLOP = 600 TFLOPS (60.7% of 989).
 */
const h100 = gpus["h100-80gb"];
const weightBytesBf16 = 2 * llama2_7b.params;
const flopsPerToken = 2 * llama2_7b.params;
const measured = {
  weightReadEfficiency: weightBytesBf16 / (h100Llama2.decodeBaseMs / 1000) / h100.bandwidthBytesPerS,
  kvReadEfficiency: llama2_7b.kvBytesPerTokenBf16 / (h100Llama2.decodePerContextTokenMs / 1000) / h100.bandwidthBytesPerS,
  prefillFlopsEfficiency: (h100Llama2.prefillTokensPerMs * 1000 * flopsPerToken) / h100.bf16FlopsPerS,
};
/**
 * FP8 GEMMs reach a smaller share of their peak than BF16 ones (docs/gpu-profiles.md, "Checks against
 * published measurements").
 */
const FP8_FLOPS_EFFICIENCY = 0.5;

/**
 * Llama-2-7B on `gpu` by roofline. Decode is memory bound: its fixed part reads the weights,
 * its per-token part the KV cache, each at the efficiency measured on the H100. Prefill is compute
 * bound at the measured FLOPs efficiency. The shortest prefill is the H100's 13 ms (launch
 * overhead, which no GPU removes) or one read of the weights, whichever is longer.
 *
 * @example
 * rooflineLlama2("llama2-7b-bf16-a10g", gpus["a10g-24gb"], "bf16").decodeBaseMs // ≈ 33.2
 */
function rooflineLlama2(name: string, gpu: GpuSpec, precision: "bf16" | "fp8"): LatencyProfile & { readonly footprint: ModelFootprint } {
  const bytesPerValue = precision === "fp8" ? 1 : 2;
  const weightBytes = llama2_7b.params * bytesPerValue;
  const kvBytesPerToken = (llama2_7b.kvBytesPerTokenBf16 / 2) * bytesPerValue;
  const flops = precision === "fp8" ? (gpu.fp8FlopsPerS ?? 0) * FP8_FLOPS_EFFICIENCY : gpu.bf16FlopsPerS * measured.prefillFlopsEfficiency;
  if (!(flops > 0)) throw new Error(`${name}: the GPU has no ${precision} tensor cores`);
  const decodeBaseMs = (weightBytes / (gpu.bandwidthBytesPerS * measured.weightReadEfficiency)) * 1000;
  return {
    name,
    decodeBaseMs,
    decodePerSequenceMs: 0,
    decodePerContextTokenMs: (kvBytesPerToken / (gpu.bandwidthBytesPerS * measured.kvReadEfficiency)) * 1000,
    prefillMinMs: Math.max(h100Llama2.prefillMinMs, decodeBaseMs),
    prefillTokensPerMs: flops / flopsPerToken / 1000,
    kvCapacityTokens: Math.floor((GPU_MEMORY_UTILIZATION * gpu.memoryBytes - weightBytes) / kvBytesPerToken),
    footprint: { weightBytes, kvBytesPerToken },
  };
}

/**
 * Where a profile's numbers come from: what they were measured on (or derived for), with which
 * engine and weights' type, when, and whether measured or derived from another measurement.
 */
export type ProfileProvenance = {
  readonly gpu: string;
  readonly engine: string;
  readonly dtype: string;
  /** ISO date (YYYY-MM-DD). */
  readonly date: string;
  readonly method: "measured" | "derived";
  /** The measurement or derivation, where to read it. */
  readonly source: string;
};

/** A profile with what the routes file checks it against (its GPU and memory footprint) and where it came from. */
export type ResolvedProfile = {
  readonly latency: LatencyProfile;
  readonly gpu: GpuName;
  readonly footprint: ModelFootprint;
  readonly provenance: ProfileProvenance;
};

/** The H100 measurements of docs/calibration.md. */
const h100Measurement: ProfileProvenance = {
  gpu: "NVIDIA H100 80GB HBM3 (one GPU)",
  engine: "PyTorch 2.11, CUDA 13.0: decode steps replayed as CUDA graphs, eager prefill (tools/calibration/calibrate.py)",
  dtype: "bf16",
  date: "2026-11-27",
  method: "measured",
  source: "docs/calibration.md; measurements in docs/calibration/",
};

const measuredEntry = (latency: LatencyProfile, footprint: ModelFootprint): ResolvedProfile => ({ latency, gpu: "h100-80gb", footprint, provenance: h100Measurement });
const derivedEntry = (name: string, gpu: GpuName, precision: "bf16" | "fp8"): ResolvedProfile => {
  const { footprint, ...latency } = rooflineLlama2(name, gpus[gpu], precision);
  const provenance: ProfileProvenance = {
    gpu,
    engine: "roofline of the H100 Llama-2-7B measurement (same fractions of peak bandwidth and FLOPs)",
    dtype: precision,
    date: "2026-11-27",
    method: "derived",
    source: "docs/gpu-profiles.md, \"Derived by roofline\"",
  };
  return { latency, gpu, footprint, provenance };
};

const profiles = {
  "llama2-7b-bf16-h100": measuredEntry(h100Llama2, { weightBytes: weightBytesBf16, kvBytesPerToken: llama2_7b.kvBytesPerTokenBf16 }),
  "llama3-8b-bf16-h100": measuredEntry(
    {
      name: "llama3-8b-bf16-h100",
      decodeBaseMs: 6.54,
      decodePerSequenceMs: 0.0147,
      decodePerContextTokenMs: 0.0000378,
      prefillMinMs: 13.1,
      prefillTokensPerMs: 41,
      kvCapacityTokens: 430_000,
    },
    { weightBytes: 16.06e9, kvBytesPerToken: 131_072 },
  ),
  "llama3.2-1b-bf16-h100": measuredEntry(
    {
      name: "llama3.2-1b-bf16-h100",
      decodeBaseMs: 1.51,
      decodePerSequenceMs: 0.0028,
      decodePerContextTokenMs: 0.0000105,
      prefillMinMs: 3.7,
      prefillTokensPerMs: 255,
      kvCapacityTokens: 2_100_000,
    },
    { weightBytes: 3.0e9, kvBytesPerToken: 32_768 },
  ),
  "llama2-7b-bf16-a10g": derivedEntry("llama2-7b-bf16-a10g", "a10g-24gb", "bf16"),
  "llama2-7b-bf16-a100-40gb": derivedEntry("llama2-7b-bf16-a100-40gb", "a100-40gb", "bf16"),
  "llama2-7b-bf16-a100-80gb": derivedEntry("llama2-7b-bf16-a100-80gb", "a100-80gb", "bf16"),
  "llama2-7b-fp8-h100": derivedEntry("llama2-7b-fp8-h100", "h100-80gb", "fp8"),
} as const satisfies Record<string, ResolvedProfile>;

export type ProfileName = keyof typeof profiles;
export const profileNames = Object.keys(profiles) as [ProfileName, ...ProfileName[]];

export function getProfile(name: ProfileName): LatencyProfile {
  return profiles[name].latency;
}

/** The GPU a profile was measured on (or derived for) and what one copy holds in its memory. */
export function profileHardware(name: ProfileName): { readonly gpu: GpuName; readonly footprint: ModelFootprint } {
  return profiles[name];
}

/** A shipped profile with its GPU, footprint and provenance. */
export function shippedProfile(name: ProfileName): ResolvedProfile {
  return profiles[name];
}

export function isProfileName(name: string): name is ProfileName {
  return Object.hasOwn(profiles, name);
}

/**
 * KV-cache tokens one copy can hold on `accelerators` GPUs: the profile's own figure on one GPU,
 * plus the usable memory of each further GPU (tensor parallelism shards the weights, so the extra
 * memory is all cache).
 */
export function kvCapacityTokens(profile: ProfileName | ResolvedProfile, accelerators: number): number {
  const { gpu, footprint, latency } = typeof profile === "string" ? shippedProfile(profile) : profile;
  const extraBytes = Math.max(0, accelerators - 1) * GPU_MEMORY_UTILIZATION * gpus[gpu].memoryBytes;
  return latency.kvCapacityTokens + Math.floor(extraBytes / footprint.kvBytesPerToken);
}
