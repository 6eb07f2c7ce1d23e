import { compressedMs, type ScalingActivity, type ScalingCause } from "#shared/core/autoscaling";
import { METRIC_PERIOD_SECONDS } from "#shared/core/autoscaling-alarms";
import { planPlacement } from "#shared/core/placement";
import type { RouteCatalog } from "#shared/core/routes";
import type { EngineClock } from "./clock.ts";
import { createComponentEngine, type ComponentEngine } from "./component.ts";

export type FleetOptions = {
  readonly clock: EngineClock;
  readonly bucketMs?: number;
  /**
   * How many times faster than AWS the scaling machinery runs: a new copy's warm-up and the
   * CloudWatch metric periods are divided by it (and the autoscaler's alarms and cooldowns by the
   * same factor). Default 1.
   */
  readonly scalingTimeCompression?: number;
};

/** A change of a component's copy count, with why; `detail` says it in words. */
export type FleetScalingActivity = ScalingActivity & { readonly component: string; readonly detail: string };

/**
 * Every endpoint of the catalog with its components' copies placed on its instances' GPUs, in
 * service from the start; and scaling at run time, as Application Auto Scaling would change a
 * component's copy count: new copies take free GPUs and serve after the component's warm-up.
 * Every change is kept as a scaling activity.
 */
export function createFleet(catalog: RouteCatalog, options: FleetOptions) {
  const compression = options.scalingTimeCompression ?? 1;
  const metricPeriodMs = compressedMs(METRIC_PERIOD_SECONDS, compression);
  const engines = new Map<string, ComponentEngine>();
  const activities: FleetScalingActivity[] = [];
  for (const [endpointName, endpoint] of catalog.endpoints) {
    const hosted = [...catalog.components.values()].filter((c) => c.endpointName === endpointName);
    const plan = planPlacement(endpoint, hosted.map((c) => ({ component: c.name, gpusPerCopy: c.accelerators_per_copy, copies: c.copies })));
    if (!plan.ok) throw new Error(`endpoint ${endpointName}: ${plan.message}`);
    for (const component of hosted) {
      const engine = createComponentEngine(component, { clock: options.clock, bucketMs: options.bucketMs, metricPeriodMs });
      for (const placement of plan.copies.get(component.name) ?? []) engine.addCopy(placement, 0);
      engines.set(component.name, engine);
    }
  }

  const onEndpoint = (endpointName: string) => [...engines.values()].filter((e) => e.component.endpointName === endpointName);

  return {
    engine(componentName: string): ComponentEngine | undefined {
      return engines.get(componentName);
    },

    /**
     * Sets a component's copy count (its DesiredCopyCount), for `cause`. Added copies are placed
     * around every copy of the endpoint that still holds GPUs and warm up for the component's
     * warmup_seconds (compressed); removed ones drain.
     */
    scale(componentName: string, copies: number, cause: { readonly cause: ScalingCause; readonly detail: string } = { cause: "manual", detail: "" }):
      { readonly ok: true } | { readonly ok: false; readonly message: string } {
      const engine = engines.get(componentName);
      if (!engine) return { ok: false, message: `unknown inference component ${componentName}` };
      const { component } = engine;
      const current = engine.copyCount();
      const record = () => {
        if (copies !== current) activities.push({ component: componentName, atMs: options.clock.now(), fromCopies: current, toCopies: copies, ...cause });
        return { ok: true } as const;
      };
      if (copies < current) engine.drainCopies(current - copies);
      if (copies <= current) return record();
      const endpoint = catalog.endpoints.get(component.endpointName);
      if (!endpoint) return { ok: false, message: `unknown endpoint ${component.endpointName}` };
      const taken = onEndpoint(component.endpointName).flatMap((e) => e.placements());
      const plan = planPlacement(endpoint, [{ component: componentName, gpusPerCopy: component.accelerators_per_copy, copies: copies - current }], taken);
      if (!plan.ok) return { ok: false, message: `endpoint ${component.endpointName} has no room: ${plan.message}` };
      const warmupMs = compressedMs(component.warmup_seconds, compression);
      for (const placement of plan.copies.get(componentName) ?? []) engine.addCopy(placement, warmupMs);
      return record();
    },

    /** The scaling activities of one component, or of all, oldest first. */
    activities(componentName?: string): readonly FleetScalingActivity[] {
      return componentName === undefined ? activities : activities.filter((a) => a.component === componentName);
    },

    scalingTimeCompression: compression,

    stats() {
      return {
        endpoints: [...catalog.endpoints].map(([name, spec]) => ({
          endpoint: name,
          instanceType: spec.instance_type,
          instances: spec.instance_count,
          gpu: spec.gpu,
          gpusPerInstance: spec.gpus_per_instance,
          gpusInUse: onEndpoint(name).reduce((sum, e) => sum + e.placements().reduce((n, p) => n + p.gpus.length, 0), 0),
        })),
        components: [...engines.values()].map((e) => e.stats()),
        scalingTimeCompression: compression,
        scalingActivities: activities,
      };
    },
  };
}

export type Fleet = ReturnType<typeof createFleet>;
