import type { JobBreakdown } from "#shared/core/job-breakdown";

/** A GPU outcome's breakdown for tests: one job alone in its GPU batch, the rest as `over` says. */
export function testBreakdown(over: Partial<JobBreakdown> = {}): JobBreakdown {
  return {
    queue_wait_ms: 0,
    batcher_hold_ms: 0,
    gpu_ms: 1_000,
    gpu_batch: { id: "gpu_1", sequences: 1, kv_tokens: 100 },
    component: "llama-2-7b-ic",
    copy: { id: null, gpus: 1, usd_per_hour: 14.13 },
    attempts: 1,
    prompt_tokens: 10,
    generated_tokens: 0,
    cost: { usd: 0.004, rule: "rolling-share" },
    ...over,
  };
}
