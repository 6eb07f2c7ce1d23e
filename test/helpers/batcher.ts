import { processDelivery, type BatcherDeps, type DeliveryReport } from "#shared/app/process-delivery";
import type { MemoryQueue } from "./fakes.ts";

/** Runs the batcher on everything waiting in the in-memory queue, as one delivered window. */
export function runBatcher(deps: BatcherDeps & { readonly queue: MemoryQueue }, max?: number): Promise<DeliveryReport> {
  return processDelivery(deps, deps.queue.takeDelivery("llama-2-7b", max), { topUpUntil: new Date(deps.clock.now().getTime() + 60_000) });
}
