import { staticBatchMs, type SequenceShape } from "./latency-model.ts";
import type { LatencyProfile } from "./profiles.ts";
import type { ComponentLimits } from "./routes.ts";

/**
 * `batchline calibrate`'s design and fit: the latency model of the shipped profiles
 * (latency-model.ts: decode step = a + c·B + b·Σctx, prefill = max(p0, tokens / r)) fitted to
 * whole calls timed from the caller, as the batcher times them.
 *
 * A burst is B prompts of P tokens each asking for N new tokens, sent together. Its time is
 * overhead + prefill(B·P) + the decode steps of the static timeline; but from the caller the start
 * is blurred (the B requests reach the container over a few ms and join the first iterations
 * unevenly) and every call pays SageMaker's and the network's overhead. So:
 * - decode: bursts of one (B, P) with different N differ only by decode steps; each (B, P) cell
 *   gets an intercept of its own (a fixed-effects regression), which absorbs the blur, the prefill
 *   and the overhead, and the decode terms a, c, b are fitted on what is left, none negative;
 * - prefill: bursts with N = 1 are overhead + prefill; a line through those above the floor gives
 *   the overhead (its intercept) and 1/r (its slope), those on the floor give p0. The overhead is
 *   reported, not put into the profile: the shipped profiles are the GPU's time alone.
 */

export type CalibrationGrid = {
  readonly batchSizes: readonly number[];
  readonly promptTokens: readonly number[];
  /** Output lengths of the decode bursts (at least two above 1); bursts of 1 new token are added for the prefill. */
  readonly newTokens: readonly number[];
  readonly repeats: number;
};

export type CalibrationBurst = { readonly batch: number; readonly promptTokens: number; readonly newTokens: number; readonly repeat: number };

/** The default design: batch sizes × prompt lengths × output lengths, 2 repeats, bounded by the component's limits. */
export const DEFAULT_GRID: CalibrationGrid = { batchSizes: [1, 4, 16, 64], promptTokens: [128, 512, 1024, 2048], newTokens: [32, 256], repeats: 2 };

/**
 * Prefill bursts are single prompts: B prompts sent together reach the container over some ms
 * (each call is signed and sent on its own), and that spread would be timed as prefill. They are
 * cheap, so each goes this many times per repeat, and the fit takes the fastest.
 */
export const PREFILL_SENDS = 3;

/**
 * The bursts of a grid that the component admits whole and at once: at most max_sequences
 * prompts whose prompt + new tokens fit the token budget (a burst that queued or was preempted
 * would time the queue, not the GPU): decode bursts of every batch size × prompt × output length,
 * prefill bursts of one prompt of each length, and of the longest the component takes, with 1 new
 * token. Repeats go round the whole grid,
 * so that a slow minute of the endpoint spreads over the cells instead of landing on one.
 */
export function calibrationPlan(grid: CalibrationGrid, limits: ComponentLimits): { readonly bursts: readonly CalibrationBurst[]; readonly left: readonly string[] } {
  const left: string[] = [];
  const cells: Omit<CalibrationBurst, "repeat">[] = [];
  const admits = (batch: number, promptTokens: number, newTokens: number): boolean => {
    const over = [
      batch > limits.max_sequences && `batch ${batch}: over max_sequences ${limits.max_sequences}`,
      promptTokens > limits.max_prompt_tokens && `prompt ${promptTokens}: over max_prompt_tokens ${limits.max_prompt_tokens}`,
      newTokens > limits.max_new_tokens && `output ${newTokens}: over max_new_tokens ${limits.max_new_tokens}`,
      batch * (promptTokens + newTokens) > limits.token_budget && `${batch} × (${promptTokens} + ${newTokens}): over token_budget ${limits.token_budget}`,
    ].filter((reason) => reason !== false);
    left.push(...over);
    return over.length === 0;
  };
  // The longest prompt the component takes is the prefill line's longest lever, and costs one call.
  for (const promptTokens of new Set([...grid.promptTokens, limits.max_prompt_tokens])) {
    if (admits(1, promptTokens, 1)) cells.push(...Array.from({ length: PREFILL_SENDS }, () => ({ batch: 1, promptTokens, newTokens: 1 })));
  }
  for (const promptTokens of grid.promptTokens) {
    for (const batch of grid.batchSizes) {
      for (const newTokens of grid.newTokens.filter((n) => n > 1)) {
        if (admits(batch, promptTokens, newTokens)) cells.push({ batch, promptTokens, newTokens });
      }
    }
  }
  const bursts = Array.from({ length: grid.repeats }, (_, repeat) => cells.map((c) => ({ ...c, repeat }))).flat();
  return { bursts, left: [...new Set(left)] };
}

/** What a plan costs: its requests, and the GPU time the profile predicts for it. */
export function planEstimate(bursts: readonly CalibrationBurst[], profile: LatencyProfile): { readonly requests: number; readonly gpuMs: number } {
  let requests = 0;
  let gpuMs = 0;
  for (const b of bursts) {
    requests += b.batch;
    gpuMs += staticBatchMs(profile, Array.from({ length: b.batch }, () => ({ promptTokens: b.promptTokens, newTokens: b.newTokens })));
  }
  return { requests, gpuMs };
}

/** One burst as it ran: its planned cell, each sequence's prompt and generated tokens as counted, and its time from the first send to the last answer. */
export type BurstMeasurement = { readonly burst: CalibrationBurst; readonly sequences: readonly SequenceShape[]; readonly ms: number };

export type FitError = { readonly median: number; readonly largest: number; readonly points: number };

export type ProfileFit = {
  /** The fitted numbers; kvCapacityTokens is the base profile's (a calibration does not measure memory). */
  readonly latency: LatencyProfile;
  /** The time every call paid beside the GPU's (SageMaker, network): the prefill line's intercept. */
  readonly overheadMs: number;
  /** Relative error of the fit on each burst's whole time (overhead + static timeline), prefill-only bursts and decode bursts apart. */
  readonly error: { readonly prefill: FitError; readonly decode: FitError };
};

export class CalibrationFitError extends Error {
  override readonly name = "CalibrationFitError";
}

const unit = (decode: Partial<Pick<LatencyProfile, "decodeBaseMs" | "decodePerSequenceMs" | "decodePerContextTokenMs">>): LatencyProfile => ({
  name: "unit",
  decodeBaseMs: 0,
  decodePerSequenceMs: 0,
  decodePerContextTokenMs: 0,
  prefillMinMs: 0,
  prefillTokensPerMs: Number.POSITIVE_INFINITY,
  kvCapacityTokens: 0,
  ...decode,
});
/** The static timeline's decode time is a·fa + c·fc + b·fb: its features are the timeline under a profile of one unit of each. */
const UNITS = [unit({ decodeBaseMs: 1 }), unit({ decodePerSequenceMs: 1 }), unit({ decodePerContextTokenMs: 1 })] as const;
const decodeFeatures = (sequences: readonly SequenceShape[]) => UNITS.map((u) => staticBatchMs(u, sequences));

/**
 * Fits a profile to the bursts. `base` gives the name's stem and the KV room; throws
 * CalibrationFitError where the bursts do not determine a number (too few cells or lengths).
 */
export function fitProfile(all: readonly BurstMeasurement[], base: LatencyProfile, name: string): ProfileFit {
  const measurements = fastestBursts(all);
  const [decodeBaseMs, decodePerSequenceMs, decodePerContextTokenMs] = fitDecode(measurements.filter((m) => longest(m) > 1));
  const prefill = fitPrefill(measurements.filter((m) => longest(m) === 1).map((m) => ({ tokens: promptTokensOf(m), ms: m.ms })));
  const latency: LatencyProfile = {
    name,
    decodeBaseMs,
    decodePerSequenceMs,
    decodePerContextTokenMs,
    prefillMinMs: prefill.minMs,
    prefillTokensPerMs: prefill.tokensPerMs,
    kvCapacityTokens: base.kvCapacityTokens,
  };
  const errorOf = (list: readonly BurstMeasurement[]) => fitError(list.map((m) => (prefill.overheadMs + staticBatchMs(latency, m.sequences)) / m.ms - 1));
  return {
    latency,
    overheadMs: prefill.overheadMs,
    error: { prefill: errorOf(measurements.filter((m) => longest(m) === 1)), decode: errorOf(measurements.filter((m) => longest(m) > 1)) },
  };
}

/**
 * The fastest burst of each (batch, prompt, output) point: a pause of the network, the endpoint's
 * front end or the caller only ever adds time, so the fastest repeat is the nearest the GPU's own.
 */
function fastestBursts(measurements: readonly BurstMeasurement[]): BurstMeasurement[] {
  const points = Map.groupBy(measurements, (m) => `${m.burst.batch}x${m.burst.promptTokens}x${m.burst.newTokens}`);
  return [...points.values()].map((list) => list.reduce((fastest, m) => (m.ms < fastest.ms ? m : fastest)));
}

const longest = (m: BurstMeasurement) => Math.max(0, ...m.sequences.map((s) => s.newTokens));
const promptTokensOf = (m: BurstMeasurement) => m.sequences.reduce((sum, s) => sum + s.promptTokens, 0);

function fitError(relative: readonly number[]): FitError {
  const sizes = relative.map(Math.abs).sort((x, y) => x - y);
  const mid = sizes.length / 2;
  const median = sizes.length === 0 ? 0 : sizes.length % 2 === 1 ? (sizes[Math.floor(mid)] ?? 0) : ((sizes[mid - 1] ?? 0) + (sizes[mid] ?? 0)) / 2;
  return { median, largest: sizes.at(-1) ?? 0, points: sizes.length };
}

/**
 * a, c, b by least squares within each (B, P) cell, every cell weighted by its mean time so that
 * short and long bursts count alike in relative terms; the non-negative solution with the least
 * error over all subsets of the three terms (Llama-2-7B's measured c is 0).
 */
function fitDecode(measurements: readonly BurstMeasurement[]): readonly [number, number, number] {
  const cells = Map.groupBy(measurements, (m) => `${m.burst.batch}x${m.burst.promptTokens}`);
  const rows: { readonly x: readonly number[]; readonly y: number }[] = [];
  for (const cell of cells.values()) {
    if (new Set(cell.map(longest)).size < 2) continue;
    const features = cell.map((m) => decodeFeatures(m.sequences));
    const meanY = cell.reduce((sum, m) => sum + m.ms, 0) / cell.length;
    const meanX = UNITS.map((_, j) => features.reduce((sum, f) => sum + (f[j] ?? 0), 0) / cell.length);
    cell.forEach((m, i) => rows.push({ x: (features[i] ?? []).map((f, j) => (f - (meanX[j] ?? 0)) / meanY), y: (m.ms - meanY) / meanY }));
  }
  if (rows.length < 3) throw new CalibrationFitError(`the decode step needs bursts of at least two output lengths in at least two cells; got ${rows.length} usable bursts`);
  let best: { readonly coefficients: number[]; readonly sse: number } | undefined;
  for (let mask = 1; mask < 8; mask++) {
    const terms = [0, 1, 2].filter((j) => mask & (1 << j));
    const solved = leastSquares(rows.map((r) => terms.map((j) => r.x[j] ?? 0)), rows.map((r) => r.y));
    if (!solved || solved.some((v) => v < 0)) continue;
    const coefficients = [0, 0, 0];
    terms.forEach((j, k) => (coefficients[j] = solved[k] ?? 0));
    const sse = rows.reduce((sum, r) => sum + (r.y - r.x.reduce((s, x, j) => s + x * (coefficients[j] ?? 0), 0)) ** 2, 0);
    if (!best || sse < best.sse) best = { coefficients, sse };
  }
  const [a = 0, c = 0, b = 0] = best?.coefficients ?? [];
  if (!(a > 0)) throw new CalibrationFitError("the bursts give no positive fixed cost of a decode step: too few output lengths, or times too noisy");
  return [a, c, b];
}

/**
 * overhead + max(p0, tokens / r): every split of the bursts by prompt tokens into a floor and a
 * line is tried, and the one with the least squared relative error kept. The line needs two
 * distinct token counts; with none on the floor, p0 is where the line meets the fewest tokens.
 */
function fitPrefill(points: readonly { readonly tokens: number; readonly ms: number }[]): { readonly overheadMs: number; readonly minMs: number; readonly tokensPerMs: number } {
  const sorted = [...points].sort((x, y) => x.tokens - y.tokens);
  const distinct = [...new Set(sorted.map((p) => p.tokens))];
  let best: { readonly overheadMs: number; readonly minMs: number; readonly tokensPerMs: number; readonly sse: number } | undefined;
  for (let split = 0; split <= distinct.length - 2; split++) {
    const knee = distinct[split] ?? 0;
    const floor = sorted.filter((p) => p.tokens < knee);
    const line = sorted.filter((p) => p.tokens >= knee);
    let fitted = leastSquares(line.map((p) => [1, p.tokens]), line.map((p) => p.ms));
    // A negative overhead is noise: the line through the origin instead.
    if (!fitted || (fitted[0] ?? 0) < 0) fitted = [0, line.reduce((s, p) => s + p.ms * p.tokens, 0) / line.reduce((s, p) => s + p.tokens ** 2, 0)];
    const [overheadMs = 0, msPerToken = 0] = fitted;
    if (!(msPerToken > 0)) continue;
    const minMs = floor.length > 0 ? Math.max(0, floor.reduce((s, p) => s + p.ms, 0) / floor.length - overheadMs) : knee * msPerToken;
    const sse = sorted.reduce((s, p) => s + ((overheadMs + Math.max(minMs, p.tokens * msPerToken)) / p.ms - 1) ** 2, 0);
    if (!best || sse < best.sse) best = { overheadMs, minMs, tokensPerMs: 1 / msPerToken, sse };
  }
  if (!best) throw new CalibrationFitError(`the prefill needs bursts of 1 new token at two or more prompt sizes; got ${distinct.length}`);
  const { sse: _, ...fit } = best;
  return fit;
}

/**
 * Ordinary least squares by the normal equations (three unknowns at most), each column scaled to
 * unit length first (the context term's features are 10^5 times the fixed term's); undefined when
 * the columns are (nearly) dependent.
 */
function leastSquares(rawX: readonly (readonly number[])[], y: readonly number[]): number[] | undefined {
  const n = rawX[0]?.length ?? 0;
  const scales = Array.from({ length: n }, (_, j) => Math.sqrt(rawX.reduce((s, row) => s + (row[j] ?? 0) ** 2, 0)));
  if (scales.some((s) => !(s > 0))) return undefined;
  const x = rawX.map((row) => row.map((v, j) => v / (scales[j] ?? 1)));
  const a = Array.from({ length: n }, (_, i) => Array.from({ length: n + 1 }, (_, j) => x.reduce((s, row, k) => s + (row[i] ?? 0) * (j < n ? (row[j] ?? 0) : (y[k] ?? 0)), 0)));
  for (let col = 0; col < n; col++) {
    const pivot = a.slice(col).reduce((bestRow, row, i) => (Math.abs(row[col] ?? 0) > Math.abs(a[bestRow]?.[col] ?? 0) ? col + i : bestRow), col);
    [a[col], a[pivot]] = [a[pivot] ?? [], a[col] ?? []];
    const lead = a[col]?.[col] ?? 0;
    if (Math.abs(lead) < 1e-10) return undefined;
    for (let row = 0; row < n; row++) {
      if (row === col) continue;
      const factor = (a[row]?.[col] ?? 0) / lead;
      for (let j = col; j <= n; j++) (a[row] as number[])[j] = (a[row]?.[j] ?? 0) - factor * (a[col]?.[j] ?? 0);
    }
  }
  return a.map((row, i) => (row[n] ?? 0) / (row[i] ?? 1) / (scales[i] ?? 1));
}
