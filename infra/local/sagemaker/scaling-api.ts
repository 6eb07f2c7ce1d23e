import type { ScalingCause } from "#shared/core/autoscaling";
import type { MetricDatapoint } from "#shared/core/autoscaling-alarms";
import type { RouteCatalog } from "#shared/core/routes";
import type { EngineClock } from "./clock.ts";
import type { Fleet, FleetScalingActivity } from "./fleet.ts";

/**
 * What the local autoscaler reads and does, in the emulator's process: each component's CloudWatch
 * datapoints and scaling activities, and its DesiredCopyCount to set, on the emulator's clock (so
 * that the emulator's time scale speeds scaling up as it speeds the GPUs up).
 */
export type EmulatorScaling = {
  readonly catalog: RouteCatalog;
  /** How many times faster than AWS the scaling machinery runs (warm-ups, metric periods). */
  readonly timeCompression: number;
  /** The emulator's simulated time, ms. */
  nowMs(): number;
  /** Calls `fn` once, `delayMs` simulated ms from now; returns a cancel. */
  setTimer(fn: () => void, delayMs: number): () => void;
  desiredCopies(component: string): number;
  datapoints(component: string): readonly MetricDatapoint[];
  activities(component: string): readonly FleetScalingActivity[];
  scale(component: string, copies: number, cause: { readonly cause: ScalingCause; readonly detail: string }): ReturnType<Fleet["scale"]>;
};

/** The API over whichever fleet the emulator runs now (a reset replaces it). */
export function emulatorScaling(catalog: RouteCatalog, clock: EngineClock, fleet: () => Fleet): EmulatorScaling {
  return {
    catalog,
    get timeCompression() {
      return fleet().scalingTimeCompression;
    },
    nowMs: () => clock.now(),
    setTimer: (fn, delayMs) => clock.setTimer(fn, delayMs),
    desiredCopies: (component) => fleet().engine(component)?.copyCount() ?? 0,
    datapoints: (component) => fleet().engine(component)?.datapoints() ?? [],
    activities: (component) => fleet().activities(component),
    scale: (component, copies, cause) => fleet().scale(component, copies, cause),
  };
}
