import { planPlacement } from "#shared/core/placement";
import type { RouteCatalog } from "#shared/core/routes";
import type { EngineClock } from "./clock.ts";
import { createComponentEngine, type ComponentEngine } from "./component.ts";

/**
 * Every endpoint of the catalog with its components' copies placed on its instances' GPUs, in
 * service from the start; and scaling at run time, as Application Auto Scaling would change a
 * component's copy count: new copies take free GPUs and serve after the component's warm-up.
 */
export function createFleet(catalog: RouteCatalog, options: { readonly clock: EngineClock; readonly bucketMs?: number }) {
  const engines = new Map<string, ComponentEngine>();
  for (const [endpointName, endpoint] of catalog.endpoints) {
    const hosted = [...catalog.components.values()].filter((c) => c.endpointName === endpointName);
    const plan = planPlacement(endpoint, hosted.map((c) => ({ component: c.name, gpusPerCopy: c.accelerators_per_copy, copies: c.copies })));
    if (!plan.ok) throw new Error(`endpoint ${endpointName}: ${plan.message}`);
    for (const component of hosted) {
      const engine = createComponentEngine(component, options);
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
     * Sets a component's copy count. Added copies are placed around every copy of the endpoint
     * that still holds GPUs and warm up for the component's warmup_seconds; removed ones drain.
     */
    scale(componentName: string, copies: number): { readonly ok: true } | { readonly ok: false; readonly message: string } {
      const engine = engines.get(componentName);
      if (!engine) return { ok: false, message: `unknown inference component ${componentName}` };
      const { component } = engine;
      const current = engine.copyCount();
      if (copies < current) engine.drainCopies(current - copies);
      if (copies <= current) return { ok: true };
      const endpoint = catalog.endpoints.get(component.endpointName);
      if (!endpoint) return { ok: false, message: `unknown endpoint ${component.endpointName}` };
      const taken = onEndpoint(component.endpointName).flatMap((e) => e.placements());
      const plan = planPlacement(endpoint, [{ component: componentName, gpusPerCopy: component.accelerators_per_copy, copies: copies - current }], taken);
      if (!plan.ok) return { ok: false, message: `endpoint ${component.endpointName} has no room: ${plan.message}` };
      const readyAtMs = options.clock.now() + component.warmup_seconds * 1000;
      for (const placement of plan.copies.get(componentName) ?? []) engine.addCopy(placement, readyAtMs);
      return { ok: true };
    },

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
      };
    },
  };
}

export type Fleet = ReturnType<typeof createFleet>;
