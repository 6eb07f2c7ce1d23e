import { RetryableError } from "../core/errors.ts";
import type { ComponentReading, CopyReading, CopyState } from "../core/metrics.ts";
import type { Component } from "../core/routes.ts";
import type { EngineMetrics } from "../ports.ts";

/** What this adapter reads of the emulator's GET /_emulator/stats (infra/local/sagemaker/server.ts). */
type EmulatorBucket = { readonly startMs: number; readonly busyMs: number; readonly tokens: number };
type EmulatorCopy = {
  readonly copy: number;
  readonly state: "ready" | "warming" | "draining";
  readonly readyAtMs: number;
  readonly runningSequences: number;
  readonly kvCacheTokens: { readonly now: number };
  readonly series: readonly EmulatorBucket[];
};
type EmulatorStats = { readonly timeScale: number; readonly nowMs: number; readonly components: readonly { readonly component: string; readonly copies: readonly EmulatorCopy[] }[] };

const STATES: Record<EmulatorCopy["state"], CopyState> = { ready: "serving", warming: "warming", draining: "draining" };

/**
 * A serving copy's GPU busy share and generated tokens per (wall) second over the window, from its
 * one-second buckets of simulated time. The window is wall time: the emulator's clock runs
 * `timeScale` times faster, so it spans that many more simulated ms; a copy that became ready
 * within it counts from then.
 */
export function copyWindowRates(copy: EmulatorCopy, nowMs: number, windowMs: number, timeScale: number): { gpuBusyFraction: number; generatedTokensPerSecond: number } | undefined {
  const spanMs = Math.min(windowMs * timeScale, nowMs - copy.readyAtMs);
  if (copy.state !== "ready" || !(spanMs > 0)) return undefined;
  const inWindow = copy.series.filter((b) => b.startMs >= nowMs - spanMs);
  const busyMs = inWindow.reduce((sum, b) => sum + b.busyMs, 0);
  const tokens = inWindow.reduce((sum, b) => sum + b.tokens, 0);
  return { gpuBusyFraction: Math.min(1, busyMs / spanMs), generatedTokensPerSecond: (tokens * 1000 * timeScale) / spanMs };
}

/**
 * The embedded stack: the SageMaker emulator's stats (GET /_emulator/stats on its endpoint), which
 * know every copy: its state, sequences running, KV-cache tokens held, and its iterations' time and
 * tokens. One read serves every component of a request (the same `now`).
 */
export class EmulatorEngineMetrics implements EngineMetrics {
  readonly #statsUrl: URL;
  #last: { readonly at: number; readonly stats: Promise<EmulatorStats> } | undefined;

  constructor(options: { endpoint: string }) {
    this.#statsUrl = new URL("/_emulator/stats", options.endpoint);
  }

  async read(component: Component, now: Date, windowMs: number): Promise<ComponentReading> {
    const stats = await this.#stats(now);
    const copies = stats.components.find((c) => c.component === component.name)?.copies ?? [];
    const perCopy: CopyReading[] = copies.map((c) => ({
      copy: String(c.copy),
      state: STATES[c.state],
      runningSequences: c.runningSequences,
      kvTokens: c.kvCacheTokens.now,
      ...copyWindowRates(c, stats.nowMs, windowMs, stats.timeScale),
    }));
    const serving = perCopy.filter((c) => c.state === "serving");
    const sum = (pick: (c: CopyReading) => number | undefined) => serving.reduce((total, c) => total + (pick(c) ?? 0), 0);
    const count = (state: CopyState) => perCopy.filter((c) => c.state === state).length;
    return {
      copies: { serving: serving.length, warming: count("warming"), draining: count("draining") },
      runningSequences: sum((c) => c.runningSequences),
      kvTokens: sum((c) => c.kvTokens),
      gpuBusyFraction: serving.length === 0 ? undefined : sum((c) => c.gpuBusyFraction) / serving.length,
      perCopy,
    };
  }

  #stats(now: Date): Promise<EmulatorStats> {
    if (this.#last?.at !== now.getTime()) {
      const stats = fetch(this.#statsUrl).then(async (response) => {
        if (!response.ok) throw new RetryableError("unavailable", `emulator stats: HTTP ${response.status}`);
        return (await response.json()) as EmulatorStats;
      }, (error: unknown) => {
        throw new RetryableError("unavailable", `emulator stats: ${(error as Error).message}`, error);
      });
      this.#last = { at: now.getTime(), stats };
    }
    return this.#last.stats;
  }
}
