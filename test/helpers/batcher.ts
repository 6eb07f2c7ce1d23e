import { processWindow, type WindowReport } from "#shared/app/process-window";
import type { memoryDeps } from "./fakes.ts";

/** Runs the batcher on everything waiting in the in-memory queue, as one delivered window. */
export function runBatcher(deps: ReturnType<typeof memoryDeps>, max?: number): Promise<WindowReport> {
  return processWindow(deps, deps.queue.takeWindow("llama-2-7b", max), { topUpUntil: new Date(deps.clock.now().getTime() + 60_000) });
}
