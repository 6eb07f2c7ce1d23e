import type { RouteSettings } from "#shared/core/route-settings";
import type { Route } from "#shared/core/routes";
import type { MappingOverride } from "#local/stack";

/**
 * The batching policies the bench compares, each set up as a careful user of that approach
 * would: the event source mapping's settings (BatchSize, MaximumBatchingWindowInSeconds,
 * MaximumConcurrency) and the batcher's live knobs (PUT /v1/routes/{model}/settings).
 */
export type Policy = {
  readonly name: string;
  readonly title: string;
  /** Which engine the route's component runs: the routes file's own, or a static-batch variant. */
  readonly engine: "rolling" | "static";
  /** Replaces the route's event source mapping settings; undefined: routes.yml's own. */
  readonly mapping?: MappingOverride | undefined;
  /** The batcher function's reserved concurrency; undefined: none. */
  readonly batcherReservedConcurrency?: number | undefined;
  /** The batcher's knobs; undefined: the route's defaults (defaultRouteSettings). */
  settings?(route: Route): Partial<RouteSettings>;
};

/** Immediate dispatch of what the event source mapping delivered: no holding, no top-up. */
const immediate = (maxInFlightPerCopy: number): Partial<RouteSettings> => ({
  dispatch: "immediate",
  top_up: false,
  max_in_flight_per_copy: maxInFlightPerCopy,
  max_wait_ms: 0,
});

export const POLICIES: readonly Policy[] = [
  {
    name: "a-one-at-a-time",
    title: "(a) one request per invocation, one in flight per copy",
    engine: "rolling",
    // One in flight per copy takes one invocation at a time: MaximumConcurrency cannot go below
    // 2, so the function's reserved concurrency is 1 (the second poller waits its turn).
    mapping: { batchSize: 1, maximumBatchingWindowSeconds: 0, maximumConcurrency: 2 },
    batcherReservedConcurrency: 1,
    settings: () => immediate(1),
  },
  {
    name: "b-esm-defaults",
    title: "(b) event source mapping defaults: BatchSize 10, no window, default concurrency",
    engine: "rolling",
    // maximumConcurrency undefined: AWS's own scaling (5 pollers locally).
    mapping: { batchSize: 10, maximumBatchingWindowSeconds: 0, maximumConcurrency: undefined },
    settings: (route) => immediate(route.limits.max_sequences),
  },
  {
    name: "c-fixed-window",
    title: "(c) fixed window: BatchSize 100, 1 s window",
    engine: "rolling",
    // Two windows of up to 100 cover the copy's 109 sequences; more pollers would split the
    // arrivals into more, smaller windows (each poller long-polls on its own), and 2 is AWS's
    // minimum.
    mapping: { batchSize: 100, maximumBatchingWindowSeconds: 1, maximumConcurrency: 2 },
    settings: (route) => immediate(route.limits.max_sequences),
  },
  {
    name: "d-adaptive",
    title: "(d) batchline adaptive (routes.yml mapping, default route settings)",
    engine: "rolling",
  },
  {
    name: "d-adaptive-static",
    title: "(d) batchline adaptive on the static-batch engine (lmi-dynamic)",
    engine: "static",
  },
  {
    // What the measured hold inputs change: the same, with the hold on the latency model and the
    // batcher's own pulls, as before issue 14. Run beside d-adaptive-static to compare.
    name: "d-adaptive-static-model",
    title: "(d) on the static-batch engine, its hold on the latency model alone (measured_hold off)",
    engine: "static",
    settings: () => ({ measured_hold: false }),
  },
];

export function policyNamed(name: string): Policy {
  const policy = POLICIES.find((p) => p.name === name || p.name.startsWith(`${name}-`));
  if (!policy) throw new Error(`unknown policy ${name}; known: ${POLICIES.map((p) => p.name).join(", ")}`);
  return policy;
}
