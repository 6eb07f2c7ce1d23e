import type { RouteSettings } from "../core/route-settings.ts";
import type { Route } from "../core/routes.ts";
import { simulate } from "./pipeline.ts";
import { routeGpuHourPrice, simSetup } from "./setup.ts";
import { summarize, type Prediction } from "./summary.ts";
import type { Overheads, SimJob } from "./world.ts";

/**
 * The trade-off search of `batchline tune`: every candidate (copies, sequences in flight per copy,
 * the static batch's hold) simulated on one trace, and the one that serves the most per dollar
 * while the latency objective holds.
 */

export type Objective = { readonly percentile: "p95" | "p99"; readonly targetMs: number };

/** What a candidate changes: the copies of the route's components and two of its live settings. */
export type Candidate = { readonly copies: number; readonly max_in_flight_per_copy: number; readonly max_wait_ms: number };

export type CandidateResult = Candidate & {
  readonly prediction: Prediction;
  readonly gpus: number;
  readonly dollars_per_hour: number;
  /** Requests answered per dollar of GPU time at the predicted throughput. */
  readonly requests_per_dollar: number;
  readonly meets_objective: boolean;
};

export type TuneResult = {
  readonly objective: Objective;
  readonly jobs: number;
  readonly duration_ms: number;
  readonly current: CandidateResult;
  readonly candidates: readonly CandidateResult[];
  /** The recommendation; undefined when no candidate meets the objective. */
  readonly best: CandidateResult | undefined;
};

/** Throughputs per dollar this close count as equal: then the lower latency wins. */
const SAME_VALUE = 0.01;

/**
 * The candidates to try: 1 to `maxCopies` copies; a copy's sequences from an eighth of its
 * max_sequences up to all of them; the static batch's hold only where a component batches
 * statically (rolling engines never hold). The current settings are always among them.
 */
export function candidateGrid(route: Route, settings: RouteSettings, options: { readonly maxCopies: number; readonly currentCopies: number }): Candidate[] {
  const most = route.limits.max_sequences;
  const inFlight = [...new Set([most / 8, most / 4, most / 2, most].map((n) => Math.max(1, Math.round(n))).concat(settings.max_in_flight_per_copy))];
  const holds = route.components.some((c) => c.engine === "lmi-dynamic") ? [...new Set([0, 250, 1000, 3000, settings.max_wait_ms])] : [settings.max_wait_ms];
  const copies = [...new Set([...Array.from({ length: Math.max(1, options.maxCopies) }, (_, i) => i + 1), options.currentCopies])];
  return copies.flatMap((c) => inFlight.flatMap((f) => holds.filter((w) => w < settings.latency_objective_ms).map((w) => ({ copies: c, max_in_flight_per_copy: f, max_wait_ms: w }))));
}

export type TuneOptions = {
  readonly maxCopies: number;
  /** The arrivals' span, ms (default: up to the last arrival). */
  readonly durationMs?: number | undefined;
  readonly overheads?: Overheads | undefined;
  /** Candidates to try instead of candidateGrid's. */
  readonly grid?: readonly Candidate[] | undefined;
};

/** Simulates one candidate on the trace. */
export function evaluate(route: Route, settings: RouteSettings, trace: readonly SimJob[], candidate: Candidate, objective: Objective, options: Pick<TuneOptions, "durationMs" | "overheads"> = {}): CandidateResult {
  const applied: RouteSettings = { ...settings, max_in_flight_per_copy: candidate.max_in_flight_per_copy, max_wait_ms: candidate.max_wait_ms };
  const setup = simSetup(route, applied, { copies: candidate.copies, overheads: options.overheads });
  const run = simulate(setup, trace);
  const price = routeGpuHourPrice(route);
  const durationMs = options.durationMs ?? Math.max(1000, ...trace.map((j) => j.atMs));
  const prediction = summarize(run, { durationMs, kind: "latency", pricePerGpuHour: price });
  const dollarsPerHour = run.gpus * price;
  const latency = objective.percentile === "p95" ? prediction.p95_ms : prediction.p99_ms;
  return {
    ...candidate,
    prediction,
    gpus: run.gpus,
    dollars_per_hour: dollarsPerHour,
    requests_per_dollar: dollarsPerHour > 0 ? (prediction.throughput_rpm * 60) / dollarsPerHour : Number.POSITIVE_INFINITY,
    meets_objective: prediction.unanswered === 0 && latency <= objective.targetMs,
  };
}

/** Runs the search; `currentCopies`: the copies the route runs now. */
export function tune(route: Route, settings: RouteSettings, trace: readonly SimJob[], objective: Objective, options: TuneOptions): TuneResult {
  const currentCopies = route.components[0]?.copies ?? 1;
  const current: Candidate = { copies: currentCopies, max_in_flight_per_copy: settings.max_in_flight_per_copy, max_wait_ms: settings.max_wait_ms };
  const grid = options.grid ?? candidateGrid(route, settings, { maxCopies: options.maxCopies, currentCopies });
  const candidates = grid.map((c) => evaluate(route, settings, trace, c, objective, options));
  const same = (a: Candidate) => a.copies === current.copies && a.max_in_flight_per_copy === current.max_in_flight_per_copy && a.max_wait_ms === current.max_wait_ms;
  const latencyOf = (r: CandidateResult) => (objective.percentile === "p95" ? r.prediction.p95_ms : r.prediction.p99_ms);
  const feasible = candidates.filter((r) => r.meets_objective);
  const top = Math.max(...feasible.map((r) => r.requests_per_dollar));
  const best = feasible.filter((r) => r.requests_per_dollar >= top * (1 - SAME_VALUE)).toSorted((a, b) => latencyOf(a) - latencyOf(b))[0];
  return {
    objective,
    jobs: trace.length,
    duration_ms: options.durationMs ?? Math.max(0, ...trace.map((j) => j.atMs)),
    current: candidates.find(same) ?? evaluate(route, settings, trace, current, objective, options),
    candidates,
    best,
  };
}
