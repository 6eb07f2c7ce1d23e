import type { IterationSample } from "#shared/sim/copy-engine";
/**
 * What one component copy measures about itself: the latencies CloudWatch would report, and what
 * only a simulator knows (each iteration's batch, KV-cache use and tokens), summed and bucketed
 * over simulated time for the dashboard and the benchmarks.
 */

/** A latency distribution, ms, in CloudWatch's statistics (percentiles over the last samples). */
export type LatencyStats = {
  readonly count: number;
  readonly sum: number;
  readonly min: number;
  readonly max: number;
  readonly mean: number;
  readonly p50: number;
  readonly p90: number;
  readonly p99: number;
};

/** Records latencies; percentiles come from the last `keep` samples, so memory stays bounded. */
export function latencyRecorder(keep = 10_000) {
  const recent: number[] = [];
  let count = 0;
  let sum = 0;
  let min = Number.POSITIVE_INFINITY;
  let max = 0;
  return {
    record(ms: number): void {
      count++;
      sum += ms;
      min = Math.min(min, ms);
      max = Math.max(max, ms);
      recent.push(ms);
      if (recent.length > keep) recent.shift();
    },
    stats(): LatencyStats {
      const sorted = recent.toSorted((a, b) => a - b);
      const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
      return { count, sum, min: count === 0 ? 0 : min, max, mean: count === 0 ? 0 : sum / count, p50: at(0.5), p90: at(0.9), p99: at(0.99) };
    },
  };
}
export type LatencyRecorder = ReturnType<typeof latencyRecorder>;

export type { IterationSample } from "#shared/sim/copy-engine";

/** A stretch of simulated time: what the copy did in it. Means are weighted by iteration time. */
export type SeriesBucket = {
  readonly startMs: number;
  readonly busyMs: number;
  /** Share of the bucket the GPU spent in iterations. */
  readonly busyFraction: number;
  readonly iterations: number;
  readonly tokens: number;
  readonly meanBatchSize: number;
  readonly maxBatchSize: number;
  readonly meanKvTokens: number;
  readonly maxKvTokens: number;
  readonly maxWaiting: number;
  readonly preemptions: number;
};

type Accumulator = {
  busyMs: number;
  iterations: number;
  tokens: number;
  prefillTokens: number;
  batchMs: number;
  maxBatchSize: number;
  kvMs: number;
  maxKvTokens: number;
  maxWaiting: number;
  preemptions: number;
};

const emptyAccumulator = (): Accumulator => ({
  busyMs: 0, iterations: 0, tokens: 0, prefillTokens: 0, batchMs: 0, maxBatchSize: 0, kvMs: 0, maxKvTokens: 0, maxWaiting: 0, preemptions: 0,
});

/** Adds `ms` of the iteration's time; its counts go with its first part only. */
function add(acc: Accumulator, s: IterationSample, ms: number, counts: boolean): void {
  acc.busyMs += ms;
  acc.batchMs += s.batchSize * ms;
  acc.maxBatchSize = Math.max(acc.maxBatchSize, s.batchSize);
  acc.kvMs += s.kvTokens * ms;
  acc.maxKvTokens = Math.max(acc.maxKvTokens, s.kvTokens);
  acc.maxWaiting = Math.max(acc.maxWaiting, s.waiting);
  if (!counts) return;
  acc.iterations++;
  acc.tokens += s.tokens;
  acc.prefillTokens += s.prefillTokens;
  acc.preemptions += s.preempted;
}

const weighted = (total: number, ms: number) => (ms === 0 ? 0 : total / ms);

/**
 * Iterations summed since the copy started and in buckets of `bucketMs` simulated ms (the last
 * `keepBuckets` of them). An iteration's time is shared among the buckets it spans; its counts
 * (iterations, tokens, preemptions) go to the bucket it starts in.
 */
export function iterationSeries(bucketMs: number, keepBuckets = 600) {
  const total = emptyAccumulator();
  const buckets = new Map<number, Accumulator>();
  let last: IterationSample | undefined;
  const bucketAt = (startMs: number) => {
    let bucket = buckets.get(startMs);
    if (!bucket) {
      bucket = emptyAccumulator();
      buckets.set(startMs, bucket);
      const oldest = buckets.keys().next().value;
      if (buckets.size > keepBuckets && oldest !== undefined) buckets.delete(oldest);
    }
    return bucket;
  };
  return {
    record(sample: IterationSample): void {
      last = sample;
      add(total, sample, sample.ms, true);
      const endMs = sample.startMs + sample.ms;
      for (let start = Math.floor(sample.startMs / bucketMs) * bucketMs; start < endMs || start === sample.startMs; start += bucketMs) {
        const overlap = Math.min(endMs, start + bucketMs) - Math.max(sample.startMs, start);
        add(bucketAt(start), sample, overlap, start <= sample.startMs);
      }
    },
    totals() {
      return {
        iterations: total.iterations,
        busyMs: total.busyMs,
        tokensGenerated: total.tokens,
        promptTokensPrefilled: total.prefillTokens,
        preemptions: total.preemptions,
        batchSize: { last: last?.batchSize ?? 0, mean: weighted(total.batchMs, total.busyMs), max: total.maxBatchSize },
        kvCacheTokens: { last: last?.kvTokens ?? 0, mean: weighted(total.kvMs, total.busyMs), max: total.maxKvTokens },
      };
    },
    buckets(): SeriesBucket[] {
      return [...buckets].map(([startMs, b]) => ({
        startMs,
        busyMs: b.busyMs,
        busyFraction: b.busyMs / bucketMs,
        iterations: b.iterations,
        tokens: b.tokens,
        meanBatchSize: weighted(b.batchMs, b.busyMs),
        maxBatchSize: b.maxBatchSize,
        meanKvTokens: weighted(b.kvMs, b.busyMs),
        maxKvTokens: b.maxKvTokens,
        maxWaiting: b.maxWaiting,
        preemptions: b.preemptions,
      }));
    },
  };
}
export type IterationSeries = ReturnType<typeof iterationSeries>;
