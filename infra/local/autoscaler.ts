import { autoscalingTiming, decideScaling } from "#shared/core/autoscaling";
import type { Logger } from "./log.ts";
import type { EmulatorScaling } from "./sagemaker/scaling-api.ts";

/**
 * Application Auto Scaling on the embedded stack. Each metric period of the emulator's clock (10 s
 * divided by the time compression), for every component with an `autoscaling` block, it reads
 * what CloudWatch would hold, asks the pure decision (shared/core/autoscaling.ts) and sets the
 * component's DesiredCopyCount: new copies warm up, removed ones drain (the emulator's fleet keeps
 * each change as a scaling activity, shown in GET /_emulator/stats). Wiring only.
 */
export type LocalAutoscalerOptions = {
  readonly scaling: EmulatorScaling;
  readonly log: Logger;
};

export type LocalAutoscaler = { stop(): void };

export function startLocalAutoscaler(options: LocalAutoscalerOptions): LocalAutoscaler {
  const { scaling, log } = options;
  const scaled = [...scaling.catalog.components.values()].flatMap((c) =>
    c.autoscaling ? [{ name: c.name, settings: c.autoscaling, timing: autoscalingTiming(c.autoscaling, scaling.timeCompression) }] : [],
  );
  const periodMs = scaled[0]?.timing.metricPeriodMs;
  if (periodMs === undefined) return { stop() {} };
  /** The last refusal logged per component, so that a refusal repeated every period is logged once. */
  const refusals = new Map<string, string>();

  const evaluate = () => {
    for (const { name, settings, timing } of scaled) {
      const desiredCopies = scaling.desiredCopies(name);
      const decision = decideScaling({
        scaling: settings, timing, desiredCopies, datapoints: scaling.datapoints(name), activities: scaling.activities(name), nowMs: scaling.nowMs(),
      });
      if (decision.reason === "none" || decision.reason === "held-by-cooldown") continue;
      const done = scaling.scale(name, decision.desiredCopies, { cause: decision.reason, detail: decision.detail });
      if (done.ok) {
        refusals.delete(name);
        log.info(`autoscaling ${name}: ${desiredCopies} -> ${decision.desiredCopies} copies (${decision.reason}: ${decision.detail})`);
      } else if (refusals.get(name) !== done.message) {
        refusals.set(name, done.message);
        log.warn(`autoscaling ${name}: could not set ${decision.desiredCopies} copies (${decision.reason}): ${done.message}`);
      }
    }
  };

  let stopped = false;
  let cancel: (() => void) | undefined;
  // Just after each period closes, on the period's boundary, so that late timers do not drift.
  const schedule = () => {
    const nowMs = scaling.nowMs();
    cancel = scaling.setTimer(tick, (Math.floor(nowMs / periodMs) + 1) * periodMs - nowMs);
  };
  const tick = () => {
    if (stopped) return;
    try {
      evaluate();
    } catch (error) {
      log.error(`autoscaling: ${error instanceof Error ? error.message : String(error)}`);
    }
    schedule();
  };
  schedule();
  return {
    stop() {
      stopped = true;
      cancel?.();
    },
  };
}
