import type { Lane } from "../core/lanes.ts";
import type { RouteSettings } from "../core/route-settings.ts";
import type { Route } from "../core/routes.ts";
import { gpuHourPrice } from "../core/routes.ts";
import type { TraceRequest } from "./trace.ts";
import { DEFAULT_BATCHER_TIMING, EMBEDDED_STACK_CPU, EMBEDDED_STACK_OVERHEADS, type Mapping, type Overheads, type SimJob, type SimSetup, type StackCpu } from "./world.ts";

/** What a simulation may change of a route besides its live settings. */
export type RouteVariant = {
  /** Copies of each of the route's components (default: routes.yml's). */
  readonly copies?: number | undefined;
  /** The event source mapping (default: routes.yml's window). */
  readonly mapping?: Partial<Mapping> | undefined;
  readonly overheads?: Overheads | undefined;
  /** The cores the stack's steps share (default: the embedded stack's); null: they never wait for one. */
  readonly cpu?: StackCpu | null | undefined;
};

/** The route as a simulation runs it. */
export function simSetup(route: Route, settings: RouteSettings, variant: RouteVariant = {}): SimSetup {
  // A component scaled to zero is simulated as it serves once a copy has warmed: one copy at least.
  const components = route.components.map((c) => ({ ...c, copies: Math.max(1, variant.copies ?? c.copies) }));
  return {
    route: { ...route, components },
    settings,
    mapping: {
      batchSize: route.window.batch_size,
      batchingWindowMs: route.window.batching_window_seconds * 1000,
      maximumConcurrency: route.window.maximum_concurrency,
      ...variant.mapping,
    },
    overheads: variant.overheads ?? EMBEDDED_STACK_OVERHEADS,
    cpu: variant.cpu === null ? undefined : (variant.cpu ?? EMBEDDED_STACK_CPU),
    timing: DEFAULT_BATCHER_TIMING,
  };
}

/** The route's price per GPU-hour: its first component's (the bench's route has one). */
export function routeGpuHourPrice(route: Route): number {
  const first = route.components[0];
  return first ? gpuHourPrice(first) : 0;
}

/** A trace's requests as simulator jobs, all in one lane (POST /v1/jobs without a priority: interactive). */
export function simJobsOf(trace: readonly TraceRequest[], lane: Lane = "interactive"): SimJob[] {
  return trace.map((r) => ({ id: `${lane[0]}${r.index}`, atMs: r.atMs, promptTokens: r.promptTokens, maxTokens: r.maxTokens, lane }));
}
