import type { Logger } from "./log.ts";
import type { ScheduleDefinition } from "./template.ts";

/** Invokes a function with an event (RequestResponse), as EventBridge's target does. */
export type EventInvoker = (functionName: string, event: unknown) => Promise<{ readonly functionError?: string | undefined }>;

const UNITS: Readonly<Record<string, number>> = { minute: 60_000, minutes: 60_000, hour: 3_600_000, hours: 3_600_000, day: 86_400_000, days: 86_400_000 };

/**
 * EventBridge's `rate(value unit)` in ms, as AWS takes it: a positive whole value, and the unit
 * singular for 1 and plural otherwise. `cron(...)` is not run locally: undefined.
 */
export function rateMs(expression: string): number | undefined {
  const match = /^rate\((\d+) (minutes?|hours?|days?)\)$/.exec(expression.trim());
  if (!match) return undefined;
  const value = Number(match[1]);
  const unit = match[2] ?? "";
  if (value < 1 || (value === 1) !== !unit.endsWith("s")) throw new Error(`${expression}: AWS takes "rate(1 minute)" or "rate(N minutes)", N > 1`);
  return value * (UNITS[unit] ?? 0);
}

/** The event EventBridge gives a scheduled target. */
export function scheduledEvent(ruleName: string, at: Date) {
  return {
    version: "0",
    id: crypto.randomUUID(),
    "detail-type": "Scheduled Event",
    source: "aws.events",
    account: "000000000000",
    time: at.toISOString().replace(/\.\d{3}Z$/, "Z"),
    region: "us-east-1",
    resources: [`arn:aws:events:us-east-1:000000000000:rule/${ruleName}`],
    detail: {},
  };
}

export type RunningScheduler = {
  /** Runs a function's schedule now, as its next tick would (tests wait on this instead of a minute). */
  runNow(functionName: string): Promise<void>;
  stop(): Promise<void>;
};

/**
 * EventBridge schedules for the embedded stack, which has none: each rule's target invoked every
 * period (the template's rate, unless `periodMs` overrides it for that function). Like EventBridge,
 * a tick does not wait for the last invocation to end; a failed one is logged.
 */
export function startScheduler(options: {
  readonly schedules: readonly ScheduleDefinition[];
  readonly invoke: EventInvoker;
  readonly log: Logger;
  readonly periodMs?: Readonly<Record<string, number>>;
  readonly now?: () => Date;
}): RunningScheduler {
  const inFlight = new Set<Promise<void>>();
  const now = options.now ?? (() => new Date());
  const fire = (schedule: ScheduleDefinition): Promise<void> => {
    const run = options.invoke(schedule.functionName, scheduledEvent(schedule.logicalId, now())).then(
      (result) => {
        if (result.functionError) options.log.warn(`scheduled ${schedule.functionName} failed: ${result.functionError}`);
      },
      (error: unknown) => options.log.warn(`scheduled ${schedule.functionName} could not be invoked: ${String(error)}`),
    );
    inFlight.add(run);
    void run.finally(() => inFlight.delete(run));
    return run;
  };
  const timers = options.schedules.map((schedule) => {
    const period = options.periodMs?.[schedule.functionName] ?? schedule.periodMs;
    const timer = setInterval(() => void fire(schedule), period);
    timer.unref();
    return timer;
  });
  return {
    runNow: async (functionName) => {
      const schedule = options.schedules.find((s) => s.functionName === functionName);
      if (!schedule) throw new Error(`no schedule invokes ${functionName}`);
      await fire(schedule);
    },
    stop: async () => {
      for (const timer of timers) clearInterval(timer);
      await Promise.all(inFlight);
    },
  };
}
