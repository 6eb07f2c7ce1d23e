/**
 * Where the copies of an endpoint's inference components run: each copy takes
 * accelerators_per_copy GPUs of one instance (a copy never spans instances), and no GPU serves two
 * copies. Used to check the routes file and by the SageMaker emulator, which places copies the
 * same way when a component scales at run time.
 */

/** One copy's place: an instance of the endpoint and GPUs of that instance. */
export type CopyPlacement = { readonly instance: number; readonly gpus: readonly number[] };

export type EndpointShape = { readonly instance_count: number; readonly gpus_per_instance: number };

/** Copies of one component to place. */
export type PlacementDemand = { readonly component: string; readonly gpusPerCopy: number; readonly copies: number };

export type PlacementResult =
  | { readonly ok: true; readonly copies: ReadonlyMap<string, readonly CopyPlacement[]> }
  | { readonly ok: false; readonly message: string };

/**
 * Places the demands around copies already placed, copies needing the most GPUs first (so that
 * small copies do not fragment the instances big ones need). Each copy goes to the instance with
 * the most free GPUs (copies spread over instances, so that losing one instance leaves the
 * others serving), on its lowest-numbered free GPUs.
 *
 * @example
 * planPlacement({ instance_count: 1, gpus_per_instance: 8 }, [{ component: "a", gpusPerCopy: 2, copies: 2 }])
 * // { ok: true, copies: Map { "a" => [{ instance: 0, gpus: [0, 1] }, { instance: 0, gpus: [2, 3] }] } }
 */
export function planPlacement(endpoint: EndpointShape, demands: readonly PlacementDemand[], placed: readonly CopyPlacement[] = []): PlacementResult {
  const free = Array.from({ length: endpoint.instance_count }, () => new Set(Array.from({ length: endpoint.gpus_per_instance }, (_, g) => g)));
  for (const copy of placed) for (const gpu of copy.gpus) free[copy.instance]?.delete(gpu);

  const copies = new Map<string, CopyPlacement[]>(demands.map((d) => [d.component, []]));
  for (const demand of demands.toSorted((a, b) => b.gpusPerCopy - a.gpusPerCopy)) {
    const mine = copies.get(demand.component) ?? [];
    for (let i = 0; i < demand.copies; i++) {
      const instance = mostFree(free, demand.gpusPerCopy);
      const gpusLeft = free[instance ?? -1];
      if (instance === undefined || !gpusLeft) {
        const left = free.map((s) => s.size).join(", ");
        return { ok: false, message: `copy ${i + 1} of ${demand.component} needs ${demand.gpusPerCopy} GPUs on one instance; free GPUs per instance: [${left}]` };
      }
      const gpus = [...gpusLeft].sort((a, b) => a - b).slice(0, demand.gpusPerCopy);
      for (const gpu of gpus) gpusLeft.delete(gpu);
      mine.push({ instance, gpus });
    }
  }
  return { ok: true, copies };
}

function mostFree(free: readonly ReadonlySet<number>[], needed: number): number | undefined {
  let best: number | undefined;
  free.forEach((gpus, instance) => {
    if (gpus.size >= needed && (best === undefined || gpus.size > (free[best]?.size ?? 0))) best = instance;
  });
  return best;
}
