import type { MetricDatapoint } from "#shared/core/autoscaling-alarms";

/**
 * What CloudWatch would receive from one inference component, one datapoint per period of
 * simulated time: ConcurrentRequestsPerCopy (requests in flight or queued in the container, per
 * serving copy) as its exact time-weighted mean, and the NoCapacityInvocationFailures counted in
 * the period. Periods are closed lazily, whenever the component changes or someone reads, so no
 * timer runs for them however compressed the periods are.
 */

/** What the serving copies hold at an instant. */
export type ServingLoad = { readonly servingCopies: number; readonly outstanding: number };

export type CloudWatchMetricsOptions = {
  /** Length of a period, simulated ms (10 s divided by the time compression). */
  readonly periodMs: number;
  /** The load at `atMs`: it holds until the component's next change, or until `nextChangeAfter`. */
  readonly loadAt: (atMs: number) => ServingLoad;
  /** When after `atMs` the serving copies change by themselves (a copy's warm-up ending), if ever. */
  readonly nextChangeAfter: (atMs: number) => number | undefined;
  /** Closed periods kept; the oldest go first. Default: a day of 10-s periods. */
  readonly keepPeriods?: number;
};

export function cloudWatchMetrics(options: CloudWatchMetricsOptions) {
  const { periodMs, loadAt, nextChangeAfter } = options;
  if (!(periodMs > 0)) throw new RangeError(`a metric period must be positive, got ${periodMs}`);
  const keep = options.keepPeriods ?? 8640;
  const closed: MetricDatapoint[] = [];
  let cursorMs = 0;
  let period = 0;
  let perCopyMs = 0;
  let servedMs = 0;
  let failures = 0;

  const closePeriod = () => {
    closed.push({ period, concurrentRequestsPerCopy: servedMs > 0 ? perCopyMs / servedMs : undefined, noCapacityInvocationFailures: failures });
    if (closed.length > keep) closed.shift();
    period++;
    perCopyMs = servedMs = failures = 0;
  };

  /** Integrates the load up to `nowMs`; called before every change of the load. */
  const advanceTo = (nowMs: number): void => {
    // A clock run to the end of time (a test's runAll) has no more periods to close.
    if (!Number.isFinite(nowMs)) return;
    while (cursorMs < nowMs) {
      const periodEndMs = (period + 1) * periodMs;
      const changeMs = nextChangeAfter(cursorMs) ?? Number.POSITIVE_INFINITY;
      const endMs = Math.min(nowMs, periodEndMs, changeMs > cursorMs ? changeMs : Number.POSITIVE_INFINITY);
      const load = loadAt(cursorMs);
      if (load.servingCopies > 0) {
        perCopyMs += (load.outstanding / load.servingCopies) * (endMs - cursorMs);
        servedMs += endMs - cursorMs;
      }
      cursorMs = endMs;
      if (cursorMs >= periodEndMs) closePeriod();
    }
  };

  return {
    advanceTo,

    /** An invocation at `nowMs` found no copy in service. */
    countNoCapacity(nowMs: number): void {
      advanceTo(nowMs);
      failures++;
    },

    /** The closed periods up to `nowMs`, oldest first. */
    datapoints(nowMs: number): readonly MetricDatapoint[] {
      advanceTo(nowMs);
      return closed;
    },

    periodMs,
  };
}

export type CloudWatchMetrics = ReturnType<typeof cloudWatchMetrics>;
