/**
 * Reproducible arrival traces: which request arrives when, and how long it is. Pure and seeded,
 * so that every policy (and the engine driven directly) sees exactly the same trace.
 */

/** One request of a trace. */
export type TraceRequest = {
  readonly index: number;
  /** When it arrives, ms after the trace starts. */
  readonly atMs: number;
  readonly promptTokens: number;
  readonly maxTokens: number;
};

export type Lengths =
  /** Every request the same: the default 512 prompt + 512 new tokens. */
  | { readonly kind: "fixed"; readonly promptTokens: number; readonly maxTokens: number }
  /** Log-uniform prompt and generation lengths between the bounds, independently. */
  | { readonly kind: "mixed"; readonly prompt: readonly [number, number]; readonly maxTokens: readonly [number, number] };

export type Arrivals =
  /** A Poisson process at `rpm` requests per minute. */
  | { readonly kind: "poisson"; readonly rpm: number }
  /**
   * Bursts: every `periodMs` a burst of Poisson arrivals at `burstRpm` lasting `burstMs`, and
   * `baseRpm` Poisson arrivals all the time.
   */
  | { readonly kind: "bursty"; readonly baseRpm: number; readonly burstRpm: number; readonly periodMs: number; readonly burstMs: number }
  /**
   * A Poisson process whose rate follows a curve: `points` are [ms, rpm], the rate linear
   * between them (a compressed day: night, ramp, peak, fall, idle).
   */
  | { readonly kind: "profile"; readonly points: readonly (readonly [number, number])[] };

export type TraceSpec = {
  readonly seed: number;
  readonly durationMs: number;
  readonly arrivals: Arrivals;
  readonly lengths: Lengths;
};

/** mulberry32: a small, fast, seedable PRNG with a 2^32 period; plenty for traces. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Exponential with the given mean; 1 − u keeps log away from 0. */
const exponential = (random: () => number, mean: number) => -Math.log(1 - random()) * mean;

/** Arrival times (ms) of a Poisson process at `rpm` in [fromMs, toMs). */
function poissonTimes(random: () => number, rpm: number, fromMs: number, toMs: number): number[] {
  if (!(rpm > 0)) return [];
  const meanGapMs = 60_000 / rpm;
  const times: number[] = [];
  for (let t = fromMs + exponential(random, meanGapMs); t < toMs; t += exponential(random, meanGapMs)) times.push(t);
  return times;
}

/** The rate of a profile at `atMs`, linear between its points and flat beyond them. */
export function profileRpm(points: readonly (readonly [number, number])[], atMs: number): number {
  const first = points[0];
  if (!first || atMs <= first[0]) return first?.[1] ?? 0;
  for (let i = 1; i < points.length; i++) {
    const [fromMs, fromRpm] = points[i - 1] as readonly [number, number];
    const [toMs, toRpm] = points[i] as readonly [number, number];
    if (atMs <= toMs) return toMs === fromMs ? toRpm : fromRpm + ((toRpm - fromRpm) * (atMs - fromMs)) / (toMs - fromMs);
  }
  return (points[points.length - 1] as readonly [number, number])[1];
}

/** A Poisson process with a varying rate, by thinning one at the highest rate (Lewis and Shedler). */
function profileTimes(random: () => number, points: readonly (readonly [number, number])[], durationMs: number): number[] {
  const peakRpm = Math.max(0, ...points.map(([, rpm]) => rpm));
  return poissonTimes(random, peakRpm, 0, durationMs).filter((atMs) => random() * peakRpm < profileRpm(points, atMs));
}

function arrivalTimes(random: () => number, arrivals: Arrivals, durationMs: number): number[] {
  if (arrivals.kind === "poisson") return poissonTimes(random, arrivals.rpm, 0, durationMs);
  if (arrivals.kind === "profile") return profileTimes(random, arrivals.points, durationMs);
  const times = poissonTimes(random, arrivals.baseRpm, 0, durationMs);
  for (let start = 0; start < durationMs; start += arrivals.periodMs) {
    times.push(...poissonTimes(random, arrivals.burstRpm, start, Math.min(durationMs, start + arrivals.burstMs)));
  }
  return times.sort((a, b) => a - b);
}

const logUniform = (random: () => number, [low, high]: readonly [number, number]) =>
  Math.round(Math.exp(Math.log(low) + random() * (Math.log(high) - Math.log(low))));

/** The trace a spec describes: the same spec (seed included) always gives the same trace. */
export function generateTrace(spec: TraceSpec): TraceRequest[] {
  // Separate streams: the lengths do not change when the arrival process does, and vice versa.
  const times = arrivalTimes(seededRandom(spec.seed), spec.arrivals, spec.durationMs);
  const lengthRandom = seededRandom(spec.seed ^ 0x5bd1e995);
  const { lengths } = spec;
  return times.map((atMs, index) =>
    lengths.kind === "fixed"
      ? { index, atMs, promptTokens: lengths.promptTokens, maxTokens: lengths.maxTokens }
      : { index, atMs, promptTokens: logUniform(lengthRandom, lengths.prompt), maxTokens: logUniform(lengthRandom, lengths.maxTokens) },
  );
}

/** Mean offered load of an arrival process, requests per minute. */
export function offeredRpm(arrivals: Arrivals, durationMs: number): number {
  if (arrivals.kind === "poisson") return arrivals.rpm;
  if (arrivals.kind === "profile") {
    // The mean rate over the trace, sampled at the midpoints of a thousand equal steps.
    const steps = 1000;
    let sum = 0;
    for (let i = 0; i < steps; i++) sum += profileRpm(arrivals.points, ((i + 0.5) * durationMs) / steps);
    return sum / steps;
  }
  return arrivals.baseRpm + (arrivals.burstRpm * arrivals.burstMs) / arrivals.periodMs;
}
