/**
 * Summary statistics shared by the metrics endpoint and the benchmarks: one definition of a
 * percentile and of cost per token, so that `GET /v1/metrics` and `npm run bench` agree.
 */

/**
 * The q-quantile (0..1) of values, by linear interpolation between closest ranks (the "R-7"
 * definition spreadsheets and numpy use). NaN for no values.
 */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  if (!(q >= 0 && q <= 1)) throw new RangeError(`quantile must be in [0, 1], got ${q}`);
  const sorted = values.toSorted((a, b) => a - b);
  const rank = q * (sorted.length - 1);
  const low = Math.floor(rank);
  const lower = sorted[low] as number;
  const upper = sorted[Math.min(sorted.length - 1, low + 1)] as number;
  return lower + (upper - lower) * (rank - low);
}

/** Dollars per million generated tokens for `gpus` GPUs at `pricePerGpuHour` producing `tokensPerS`. */
export function costPerMillionTokens(pricePerGpuHour: number, gpus: number, tokensPerS: number): number {
  if (!(tokensPerS > 0)) return Number.POSITIVE_INFINITY;
  return (pricePerGpuHour * gpus * 1e6) / (tokensPerS * 3600);
}
