import { packGpuBatches, type PackItem } from "#shared/core/packing";
import type { RouteSettings } from "#shared/core/route-settings";
import type { Component } from "#shared/core/routes";
import { addLoad, capacityOf, decideStaticBatch, demandOf, fits, noLoad, type Load } from "#shared/core/gpu-batch-policy";
import { seededRandom } from "./trace.ts";

/**
 * The micro-benchmark of the batcher's pure code: what one window costs per message in packing
 * (packGpuBatches), placement (capacityOf, fits) and the static-batch hold decision
 * (decideStaticBatch), on this machine, with no I/O.
 */
export type MicroResult = {
  /** Per window size: the median µs per message over the repetitions. */
  readonly sizes: readonly { readonly messages: number; readonly us_per_message: number; readonly pack_us_per_message: number }[];
  /** The worst of the sizes: what the target is held to. */
  readonly us_per_message: number;
};

function items(n: number, seed: number): PackItem[] {
  const random = seededRandom(seed);
  const now = Date.now();
  return Array.from({ length: n }, (_, i) => ({
    id: `job_${i}`,
    promptTokens: 32 + Math.floor(random() * 2000),
    maxNewTokens: 16 + Math.floor(random() * 1000),
    payloadBytes: 200 + Math.floor(random() * 8000),
    priority: Math.floor(random() * 10),
    deadlineMs: random() < 0.2 ? now + 60_000 + random() * 60_000 : undefined,
    submittedMs: now - Math.floor(random() * 5000),
  }));
}

/** One window, as the batcher handles it: pack, place each job, decide each static batch. */
function oneWindow(window: readonly PackItem[], component: Component, settings: RouteSettings): number {
  const profile = component.latency;
  const batches = packGpuBatches(window, { limits: component.limits, profile, oneRequestPerBatch: component.engine === "lmi-dynamic" });
  const capacity = capacityOf(component, settings);
  let load: Load = noLoad;
  let placed = 0;
  for (const item of window) {
    const demand = demandOf(item);
    if (fits(capacity, load, demand)) {
      load = addLoad(load, demand);
      placed++;
    }
  }
  const nowMs = Date.now();
  for (const batch of batches) {
    const full = batch.length >= component.limits.max_sequences;
    if (decideStaticBatch({ batch, full, nowMs, arrivalsPerMs: 0.01, profile, settings }).kind === "wait") placed++;
  }
  return placed + batches.length;
}

function medianOf(values: number[]): number {
  const sorted = values.toSorted((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
}

export function runMicro(component: Component, settings: RouteSettings, options: { budgetMs: number }): MicroResult {
  const sizes = [10, 100, 1000];
  let sink = 0;
  const results = sizes.map((n) => {
    const windows = Array.from({ length: 8 }, (_, i) => items(n, 1000 + i));
    const perMessage: number[] = [];
    const packOnly: number[] = [];
    const until = performance.now() + options.budgetMs / sizes.length;
    // Warm the JIT, then time repetitions until the budget is spent.
    for (const w of windows) sink += oneWindow(w, component, settings);
    let rep = 0;
    while (performance.now() < until || rep < 5) {
      const w = windows[rep % windows.length] as PackItem[];
      let t = performance.now();
      sink += oneWindow(w, component, settings);
      perMessage.push(((performance.now() - t) * 1000) / n);
      t = performance.now();
      sink += packGpuBatches(w, { limits: component.limits, profile: component.latency, oneRequestPerBatch: true }).length;
      packOnly.push(((performance.now() - t) * 1000) / n);
      rep++;
    }
    return { messages: n, us_per_message: medianOf(perMessage), pack_us_per_message: medianOf(packOnly) };
  });
  if (sink === -1) console.log(sink); // keeps the work observable
  return { sizes: results, us_per_message: Math.max(...results.map((r) => r.us_per_message)) };
}
