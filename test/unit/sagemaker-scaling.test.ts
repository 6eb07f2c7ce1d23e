import { describe, expect, it } from "vitest";
import { loadRouteCatalog } from "#shared/config";
import { cloudWatchMetrics, type ServingLoad } from "#local/sagemaker/cloudwatch";
import { createComponentEngine } from "#local/sagemaker/component";
import { billedCopyMs, copyCountSeries } from "#local/sagemaker/copy-lifecycle";
import { createFleet } from "#local/sagemaker/fleet";
import type { Component } from "#shared/core/routes";
import { manualClock } from "../helpers/manual-clock.ts";

const catalog = loadRouteCatalog("infra/routes.yml");
const llama2 = catalog.components.get("llama-2-7b-ic") as Component;
const seq = (promptTokens: number, newTokens: number) => ({ promptTokens, newTokens, maxNewTokens: newTokens });

describe("cloudWatchMetrics", () => {
  /** A load that the test changes by hand, with a copy whose warm-up ends at `readyAtMs`. */
  function metricsOver(initial: ServingLoad, warmUpEndsAtMs?: number) {
    let load = initial;
    const metrics = cloudWatchMetrics({
      periodMs: 10_000,
      loadAt: (atMs) => (warmUpEndsAtMs !== undefined && atMs < warmUpEndsAtMs ? { servingCopies: 0, outstanding: 0 } : load),
      nextChangeAfter: (atMs) => (warmUpEndsAtMs !== undefined && warmUpEndsAtMs > atMs ? warmUpEndsAtMs : undefined),
    });
    const change = (atMs: number, next: ServingLoad) => {
      metrics.advanceTo(atMs);
      load = next;
    };
    return { metrics, change };
  }

  it("publishes ConcurrentRequestsPerCopy as the time-weighted mean of the requests held per serving copy", () => {
    // Prepare
    const { metrics, change } = metricsOver({ servingCopies: 2, outstanding: 0 });

    // Act
    change(2_500, { servingCopies: 2, outstanding: 8 });
    change(7_500, { servingCopies: 2, outstanding: 0 });
    change(12_000, { servingCopies: 1, outstanding: 3 });
    const datapoints = metrics.datapoints(20_000);

    // Assess
    expect(datapoints).toEqual([
      { period: 0, concurrentRequestsPerCopy: 2, noCapacityInvocationFailures: 0 },
      { period: 1, concurrentRequestsPerCopy: expect.closeTo(2.4, 9), noCapacityInvocationFailures: 0 },
    ]);
  });

  it("has no ConcurrentRequestsPerCopy where no copy served, and counts the no-capacity refusals of each period", () => {
    // Prepare
    const { metrics } = metricsOver({ servingCopies: 1, outstanding: 1 }, 15_000);

    // Act
    metrics.countNoCapacity(3_000);
    metrics.countNoCapacity(4_000);
    metrics.countNoCapacity(12_000);
    const datapoints = metrics.datapoints(30_000);

    // Assess
    expect(datapoints).toEqual([
      { period: 0, concurrentRequestsPerCopy: undefined, noCapacityInvocationFailures: 2 },
      { period: 1, concurrentRequestsPerCopy: 1, noCapacityInvocationFailures: 1 },
      { period: 2, concurrentRequestsPerCopy: 1, noCapacityInvocationFailures: 0 },
    ]);
  });

  it("closes only whole periods", () => {
    // Prepare
    const { metrics } = metricsOver({ servingCopies: 1, outstanding: 0 });

    // Act & Assess
    expect(metrics.datapoints(9_999)).toEqual([]);
    expect(metrics.datapoints(10_000).map((d) => d.period)).toEqual([0]);
  });
});

describe("a component's metrics, billing and copies over time", () => {
  it("counts requests on serving copies only, and refusals when none serves", async () => {
    // Prepare
    const time = manualClock();
    const engine = createComponentEngine(llama2, { clock: time.clock, metricPeriodMs: 10_000 });
    engine.addCopy({ instance: 0, gpus: [0] }, 10_000);
    engine.countError("noCapacityInvocationFailures");
    await time.advanceTo(10_000);

    // Act
    const routed = engine.invoke({ sequences: [seq(100, 2000)] });
    await time.advanceTo(20_000);

    // Assess
    expect(routed.kind).toBe("accepted");
    expect(engine.datapoints()).toEqual([
      { period: 0, concurrentRequestsPerCopy: undefined, noCapacityInvocationFailures: 1 },
      { period: 1, concurrentRequestsPerCopy: 1, noCapacityInvocationFailures: 0 },
    ]);
    expect(engine.stats()).toMatchObject({ noCapacityInvocationFailures: 1, desiredCopies: 1, currentCopies: 1 });
  });

  it("bills a copy from its placement (warm-up included) until it is gone after draining, and tracks the copies over time", async () => {
    // Prepare
    const time = manualClock();
    const fleet = createFleet(catalog, { clock: time.clock, scalingTimeCompression: 10 });
    const component = "llama-3-1b-ic";
    await time.advanceTo(1_000);

    // Act
    fleet.scale(component, 2, { cause: "target-tracking-scale-out", detail: "busy" });
    await time.advanceTo(100_000);
    fleet.scale(component, 1, { cause: "target-tracking-scale-in", detail: "idle" });
    await time.advanceTo(200_000);
    const stats = fleet.engine(component)?.stats();

    // Assess: the warm-up is 300 s / 10.
    expect(stats?.copyCountSeries).toEqual([
      { atMs: 0, placed: 1, serving: 1, desired: 1 },
      { atMs: 1_000, placed: 2, serving: 1, desired: 2 },
      { atMs: 31_000, placed: 2, serving: 2, desired: 2 },
      { atMs: 100_000, placed: 1, serving: 1, desired: 1 },
    ]);
    expect(stats?.billing).toEqual({ copySeconds: 200 + 99, gpuSeconds: 299 });
    expect(fleet.activities(component)).toEqual([
      { component, atMs: 1_000, fromCopies: 1, toCopies: 2, cause: "target-tracking-scale-out", detail: "busy" },
      { component, atMs: 100_000, fromCopies: 2, toCopies: 1, cause: "target-tracking-scale-in", detail: "idle" },
    ]);
  });

  it("keeps a draining copy billed while it still answers", () => {
    // Act
    const copies = [{ placedAtMs: 0, readyAtMs: 0, drainingSinceMs: 50, goneAtMs: 80 }, { placedAtMs: 10, readyAtMs: 40, drainingSinceMs: undefined, goneAtMs: undefined }];

    // Assess
    expect(billedCopyMs(copies, 100)).toBe(80 + 90);
    expect(copyCountSeries(copies, 100)).toEqual([
      { atMs: 0, placed: 1, serving: 1, desired: 1 },
      { atMs: 10, placed: 2, serving: 1, desired: 2 },
      { atMs: 40, placed: 2, serving: 2, desired: 2 },
      { atMs: 50, placed: 2, serving: 1, desired: 1 },
      { atMs: 80, placed: 1, serving: 1, desired: 1 },
    ]);
  });
});
