import type { Principal } from "../core/api-keys.ts";
import { ForbiddenError, NotFoundError, ValidationError } from "../core/errors.ts";
import { checkRouteSettings, type RouteSettings } from "../core/route-settings.ts";
import type { Route, RouteCatalog } from "../core/routes.ts";
import type { Clock, JobStore, RouteSettingsStore } from "../ports.ts";
import { MAX_TRACE_JOBS, recordedTrace, simJobsOfRecorded, syntheticTrace, traceMinutes, type RecordedTrace } from "../sim/recorded-trace.ts";
import { evaluate } from "../sim/tune.ts";
import type { Prediction } from "../sim/summary.ts";
import { getRouteSettings } from "./route-settings.ts";

export type RouteTuningDeps = { readonly catalog: RouteCatalog; readonly routeSettings: RouteSettingsStore; readonly jobs: Pick<JobStore, "listRecentByModel">; readonly clock: Clock };

/** The window a prediction replays, and the most jobs of it: a Lambda simulates them twice in well under a second or two. */
export const PREDICT_WINDOW_MINUTES = 5;
export const PREDICT_MAX_JOBS = 3_000;
/** The most copies a prediction may propose. */
export const MAX_PREDICTED_COPIES = 16;

function routeOf(catalog: RouteCatalog, model: string): Route {
  const route = catalog.routes.get(model);
  if (!route) throw new NotFoundError(`model ${model} not found; known models: ${[...catalog.routes.keys()].join(", ")}`);
  return route;
}

function requireAdmin(principal: Principal, what: string): void {
  if (principal.role !== "admin") throw new ForbiddenError(`${what} needs an admin API key`);
}

/** The route's jobs of the last `minutes`, as a trace the simulator replays (`batchline trace export`). */
export async function exportRouteTrace(deps: RouteTuningDeps, principal: Principal, model: string, query: Readonly<Record<string, string | undefined>> | undefined): Promise<RecordedTrace> {
  requireAdmin(principal, "exporting a route's trace");
  routeOf(deps.catalog, model);
  return recentTrace(deps, model, traceMinutes(query?.minutes, PREDICT_WINDOW_MINUTES), MAX_TRACE_JOBS);
}

async function recentTrace(deps: RouteTuningDeps, model: string, minutes: number, limit: number): Promise<RecordedTrace> {
  const to = deps.clock.now();
  const from = new Date(to.getTime() - minutes * 60_000);
  return recordedTrace(model, await deps.jobs.listRecentByModel(model, from, limit), from, to);
}

/** The predict endpoint's P; JSON has no Infinity, so a latency or cost that cannot be had is null. */
export type PredictedRun = {
  readonly throughput_rpm: number;
  readonly p50_ms: number | null;
  readonly p95_ms: number | null;
  readonly p99_ms: number | null;
  readonly gpu_busy: number;
  readonly cost_per_million_tokens: number | null;
};

export type SettingsPrediction = {
  readonly model: string;
  readonly window_s: number;
  readonly jobs: number;
  /** Whether the window had no jobs and a synthetic trace stood in (recordedTrace's syntheticTrace). */
  readonly synthetic: boolean;
  readonly current: PredictedRun;
  readonly proposed: PredictedRun;
};

/**
 * What a change of settings would do, before it is applied: the route's last few minutes of jobs
 * simulated under the current settings and under the proposed ones (checked as PUT checks them),
 * with optional `copies` of its components.
 */
export async function predictRouteSettings(deps: RouteTuningDeps, principal: Principal, model: string, body: unknown): Promise<SettingsPrediction> {
  requireAdmin(principal, "predicting route settings");
  const route = routeOf(deps.catalog, model);
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new ValidationError("body: must be a JSON object", "body");
  const { copies: rawCopies, ...patch } = body as Record<string, unknown>;
  const currentCopies = route.components[0]?.copies ?? 1;
  const copies = rawCopies === undefined ? currentCopies : checkedCopies(rawCopies);
  const { settings: current } = await getRouteSettings(deps, model);
  const proposed = checkRouteSettings(route, current, patch);
  const trace = await recentTrace(deps, model, PREDICT_WINDOW_MINUTES, PREDICT_MAX_JOBS);
  const synthetic = trace.jobs.length === 0;
  const windowMs = PREDICT_WINDOW_MINUTES * 60_000;
  const jobs = synthetic ? syntheticTrace(route, windowMs) : simJobsOfRecorded(trace);
  const objective = { percentile: "p95" as const, targetMs: current.latency_objective_ms };
  const run = (settings: RouteSettings, copyCount: number) =>
    publicPrediction(evaluate(route, settings, jobs, { copies: copyCount, max_in_flight_per_copy: settings.max_in_flight_per_copy, max_wait_ms: settings.max_wait_ms }, objective, { durationMs: windowMs }).prediction);
  return { model, window_s: windowMs / 1000, jobs: jobs.length, synthetic, current: run(current, currentCopies), proposed: run(proposed, copies) };
}

function checkedCopies(value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 1 || value > MAX_PREDICTED_COPIES) {
    throw new ValidationError(`copies: must be an integer from 1 to ${MAX_PREDICTED_COPIES}`, "copies");
  }
  return value;
}

function publicPrediction(p: Prediction): PredictedRun {
  const finite = (v: number) => (Number.isFinite(v) ? v : null);
  return {
    throughput_rpm: p.throughput_rpm,
    p50_ms: finite(p.p50_ms),
    p95_ms: finite(p.p95_ms),
    p99_ms: finite(p.p99_ms),
    gpu_busy: p.gpu_busy,
    cost_per_million_tokens: finite(p.cost_per_million_tokens),
  };
}
