/**
 * The CloudWatch alarms behind an inference component's autoscaling, evaluated over the metric
 * datapoints the endpoint publishes. The settings are AWS's (docs/autoscaling.md gives each one
 * with its source): target tracking on SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution
 * gets a scale-out alarm on one 1-minute datapoint above the target and a scale-in alarm on ninety
 * 10-second datapoints below 90% of it; the step scaling policy that wakes a component at zero sits
 * on an alarm on NoCapacityInvocationFailures (Sum over a minute, at least 1).
 */

/** ConcurrentRequestsPerCopy is a high-resolution metric: one datapoint every 10 seconds. */
export const METRIC_PERIOD_SECONDS = 10;

/** How an alarm reads the metric: datapoints of `metricPeriodsPerDatapoint` periods, the last `datapoints` of them. */
export type AlarmShape = { readonly metricPeriodsPerDatapoint: number; readonly datapoints: number };

/** Target tracking's scale-out alarm: the last 1-minute average above the target. */
export const SCALE_OUT_ALARM: AlarmShape = { metricPeriodsPerDatapoint: 6, datapoints: 1 };
/** Target tracking's scale-in alarm: 15 minutes of 10-second averages, all under 90% of the target. */
export const SCALE_IN_ALARM: AlarmShape = { metricPeriodsPerDatapoint: 1, datapoints: 90 };
/** Target tracking removes capacity only well below the target, so that it does not flap. */
export const SCALE_IN_THRESHOLD_OF_TARGET = 0.9;
/** The step scaling alarm: at least one invocation that found no copy in the last minute. */
export const NO_CAPACITY_ALARM: AlarmShape = { metricPeriodsPerDatapoint: 6, datapoints: 1 };

/** One period of a component's metrics, as the endpoint publishes them. */
export type MetricDatapoint = {
  /** Periods since the metrics began: this datapoint covers [period, period + 1) × the period's length. */
  readonly period: number;
  /** Mean requests in flight or queued per serving copy; undefined when no copy served (CloudWatch then has no datapoint). */
  readonly concurrentRequestsPerCopy: number | undefined;
  /** Invocations refused because no copy was in service. */
  readonly noCapacityInvocationFailures: number;
};

/** An alarm datapoint: the metric over one alarm period, undefined where CloudWatch had none. */
type AlarmDatapoint = { readonly average: number | undefined; readonly sum: number };

/**
 * The alarm's last `shape.datapoints` datapoints, oldest first, each over an aligned window of
 * `shape.metricPeriodsPerDatapoint` closed periods (as CloudWatch aligns periods); fewer when the
 * metrics are younger than that.
 */
function alarmDatapoints(datapoints: readonly MetricDatapoint[], shape: AlarmShape): AlarmDatapoint[] {
  const last = datapoints.at(-1);
  if (!last) return [];
  const byPeriod = new Map(datapoints.map((d) => [d.period, d]));
  const lastWindow = Math.floor((last.period + 1) / shape.metricPeriodsPerDatapoint) - 1;
  const windows: AlarmDatapoint[] = [];
  for (let window = Math.max(0, lastWindow - shape.datapoints + 1); window <= lastWindow; window++) {
    const inWindow = Array.from({ length: shape.metricPeriodsPerDatapoint }, (_, i) => byPeriod.get(window * shape.metricPeriodsPerDatapoint + i));
    const values = inWindow.flatMap((d) => (d?.concurrentRequestsPerCopy === undefined ? [] : [d.concurrentRequestsPerCopy]));
    windows.push({
      average: values.length === 0 ? undefined : values.reduce((a, b) => a + b, 0) / values.length,
      sum: inWindow.reduce((total, d) => total + (d?.noCapacityInvocationFailures ?? 0), 0),
    });
  }
  return windows;
}

/** An alarm in ALARM, with the metric value that breached. */
export type Breach = { readonly value: number };

/**
 * Target tracking's scale-out alarm: in ALARM when the last 1-minute ConcurrentRequestsPerCopy is
 * above the target. A minute with no copy serving has no datapoint: the alarm cannot fire on it
 * (target tracking never leaves zero copies; the step scaling policy does).
 */
export function scaleOutBreach(datapoints: readonly MetricDatapoint[], target: number): Breach | undefined {
  const window = alarmDatapoints(datapoints, SCALE_OUT_ALARM);
  if (window.length < SCALE_OUT_ALARM.datapoints || !window.every((d) => d.average !== undefined && d.average > target)) return undefined;
  const value = window.at(-1)?.average;
  return value === undefined ? undefined : { value };
}

/**
 * Target tracking's scale-in alarm: in ALARM when each of the last 90 datapoints exists and is
 * under 90% of the target. The value is the latest datapoint.
 */
export function scaleInBreach(datapoints: readonly MetricDatapoint[], target: number): Breach | undefined {
  const window = alarmDatapoints(datapoints, SCALE_IN_ALARM);
  const threshold = target * SCALE_IN_THRESHOLD_OF_TARGET;
  if (window.length < SCALE_IN_ALARM.datapoints || !window.every((d) => d.average !== undefined && d.average < threshold)) return undefined;
  const value = window.at(-1)?.average;
  return value === undefined ? undefined : { value };
}

/** The step scaling alarm: in ALARM when the last minute saw at least one invocation with no copy to serve it. */
export function noCapacityBreach(datapoints: readonly MetricDatapoint[]): Breach | undefined {
  const window = alarmDatapoints(datapoints, NO_CAPACITY_ALARM);
  if (window.length < NO_CAPACITY_ALARM.datapoints || !window.every((d) => d.sum >= 1)) return undefined;
  return { value: window.at(-1)?.sum ?? 0 };
}
