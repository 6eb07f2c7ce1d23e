import { describe, expect, it } from "vitest";
import { seededRandom } from "#shared/sim/trace";
import { copyUsdPerSecond, jobBreakdown, OccupancyTimeline, offGpuBreakdown, staticBatchShareUsd } from "#shared/core/job-breakdown";
import { breakdownOf, toJobView } from "#shared/core/jobs";
import { defaultCatalog } from "../../helpers/fakes.ts";

const component = defaultCatalog().components.get("llama-2-7b-ic");
if (!component) throw new Error("no llama-2-7b-ic in infra/routes.yml");
/** An 8-GPU instance at $98.32 an hour: $12.29 a GPU-hour. */
const eightGpus = { endpointSpec: { ...component.endpointSpec, gpus_per_instance: 8, price_per_instance_hour: 98.32 } };

const seeded = seededRandom;

type Call = { readonly fromMs: number; readonly toMs: number; readonly sequences: number };

/** The calls' shares as a batcher meters them: each start and answer in time order, each call's share when it answers. */
function shares(calls: readonly Call[], usdPerS: number, copies: number, others: readonly { atMs: number; sequences: number }[] = []): number[] {
  const timeline = new OccupancyTimeline();
  const events = [
    ...calls.map((c, i) => ({ atMs: c.fromMs, order: 1, act: () => timeline.addOwn(c.fromMs, c.sequences), i })),
    ...calls.map((c, i) => ({ atMs: c.toMs, order: 0, act: () => undefined, i })),
    ...others.map((o) => ({ atMs: o.atMs, order: 2, act: () => timeline.setOthers(o.atMs, o.sequences), i: -1 })),
  ].sort((a, b) => a.atMs - b.atMs || a.order - b.order);
  const usd = calls.map(() => 0);
  const running = new Set<number>();
  for (const event of events) {
    const call = calls[event.i];
    if (event.order === 0 && call) {
      usd[event.i] = timeline.shareUsd(call.fromMs, call.toMs, usdPerS, copies) * call.sequences;
      timeline.addOwn(call.toMs, -call.sequences);
      running.delete(event.i);
      const starts = [...running].map((i) => calls[i]?.fromMs ?? call.toMs);
      timeline.forgetBefore(starts.length === 0 ? call.toMs : Math.min(...starts));
    } else {
      if (event.order === 1) running.add(event.i);
      event.act();
    }
  }
  return usd;
}

/** Copy-seconds at work over the calls: at each instant min(sequences running, copies). */
function busyCopySeconds(calls: readonly Call[], copies: number, others: readonly { atMs: number; sequences: number }[] = []): number {
  const instants = [...new Set([...calls.flatMap((c) => [c.fromMs, c.toMs]), ...others.map((o) => o.atMs)])].sort((a, b) => a - b);
  let total = 0;
  for (let k = 0; k + 1 < instants.length; k++) {
    const from = instants[k] as number;
    const to = instants[k + 1] as number;
    const own = calls.filter((c) => c.fromMs <= from && c.toMs >= to).reduce((sum, c) => sum + c.sequences, 0);
    if (own === 0) continue;
    const other = others.filter((o) => o.atMs <= from).at(-1)?.sequences ?? 0;
    // The others' sequences run too: the busy copies' cost is shared with them, and this batcher's share is own / (own + other).
    total += (Math.min(own + other, copies) * own / (own + other) * (to - from)) / 1000;
  }
  return total;
}

describe("a copy's price", () => {
  it("is the endpoint's GPU-hour price times the copy's GPUs, per second", () => {
    expect(copyUsdPerSecond({ ...eightGpus, accelerators_per_copy: 1 })).toBeCloseTo(12.29 / 3600, 12);
    expect(copyUsdPerSecond({ ...eightGpus, accelerators_per_copy: 4 })).toBeCloseTo((4 * 12.29) / 3600, 12);
  });
});

describe("the cost of a static batch", () => {
  it("splits the copy's cost over the call equally: the jobs' shares add up to price × time", () => {
    const usdPerS = copyUsdPerSecond({ ...eightGpus, accelerators_per_copy: 2 });
    for (const sequences of [1, 3, 7, 64]) {
      const share = staticBatchShareUsd(usdPerS, 4_321, sequences);
      expect(share * sequences).toBeCloseTo(usdPerS * 4.321, 12);
    }
  });
});

describe("the cost of rolling-batch calls", () => {
  const usdPerS = 1;

  it("charges a call alone on its copy the copy's whole price, and two side by side half each", () => {
    expect(shares([{ fromMs: 0, toMs: 2000, sequences: 1 }], usdPerS, 1)).toEqual([2]);
    expect(shares([{ fromMs: 0, toMs: 2000, sequences: 1 }, { fromMs: 0, toMs: 2000, sequences: 1 }], usdPerS, 1)).toEqual([1, 1]);
    // Overlapping for one second: alone 1 s (1.0) then shared 1 s (0.5); the second shares 1 s then alone 2 s.
    expect(shares([{ fromMs: 0, toMs: 2000, sequences: 1 }, { fromMs: 1000, toMs: 4000, sequences: 1 }], usdPerS, 1)).toEqual([1.5, 2.5]);
  });

  it("charges each sequence a whole copy while there are fewer sequences than copies", () => {
    expect(shares([{ fromMs: 0, toMs: 1000, sequences: 1 }, { fromMs: 0, toMs: 1000, sequences: 1 }], usdPerS, 3)).toEqual([1, 1]);
    expect(shares([{ fromMs: 0, toMs: 1000, sequences: 1 }, { fromMs: 0, toMs: 1000, sequences: 3 }], usdPerS, 2)).toEqual([0.5, 1.5]);
  });

  it("shares with the other batchers' sequences as the ledger said, from the instant it was read", () => {
    // Alone for 1 s, then beside 3 of another batcher's for 1 s.
    expect(shares([{ fromMs: 0, toMs: 2000, sequences: 1 }], usdPerS, 1, [{ atMs: 1000, sequences: 3 }])).toEqual([1.25]);
  });

  it("adds up, over 500 random calls, to the busy copies' cost (within 1%; exact but for rounding)", () => {
    const random = seeded(14);
    for (const copies of [1, 2, 4]) {
      const calls: Call[] = Array.from({ length: 500 }, () => {
        const fromMs = Math.round(random() * 60_000);
        return { fromMs, toMs: fromMs + 50 + Math.round(random() * 8_000), sequences: 1 + Math.floor(random() * 3) };
      });
      const others = Array.from({ length: 40 }, (_, k) => ({ atMs: k * 1_500, sequences: Math.floor(random() * 20) }));
      const total = shares(calls, usdPerS, copies, others).reduce((a, b) => a + b, 0);
      const expected = busyCopySeconds(calls, copies, others) * usdPerS;
      expect(Math.abs(total - expected) / expected).toBeLessThan(1e-9);
      // And without others: exactly the copy-seconds the calls kept busy.
      const alone = shares(calls, usdPerS, copies).reduce((a, b) => a + b, 0);
      expect(Math.abs(alone - busyCopySeconds(calls, copies)) / alone).toBeLessThan(0.01);
    }
  });

  it("forgets what no running call needs, keeping the state at the cut", () => {
    const timeline = new OccupancyTimeline();
    timeline.addOwn(0, 1);
    timeline.setOthers(100, 1);
    timeline.addOwn(200, 1);
    timeline.forgetBefore(150);
    expect(timeline.points).toBe(2);
    // From 150 on: own 1 and others 1 until 200, then own 2 and others 1.
    expect(timeline.shareUsd(150, 250, 1, 1)).toBeCloseTo(0.05 / 2 + 0.05 / 3, 12);
  });
});

describe("a job's breakdown", () => {
  it("measures the queue wait to the first claim, the hold to the GPU call and the call, and carries the batch, copy and cost", () => {
    const breakdown = jobBreakdown({
      createdAt: "2026-11-27T12:00:00.000Z",
      firstClaimedAt: "2026-11-27T12:00:02.500Z",
      startedAt: "2026-11-27T12:00:09.000Z",
      receivedMs: Date.parse("2026-11-27T12:00:08.000Z"),
      gpuStartMs: Date.parse("2026-11-27T12:00:09.100Z"),
      gpuEndMs: Date.parse("2026-11-27T12:00:12.600Z"),
      gpuBatch: { id: "gpu_1", sequences: 5, kvTokens: 900 },
      component: { name: "llama-2-7b-ic", accelerators_per_copy: 2, ...eightGpus },
      attempts: 2,
      promptTokens: 40,
      generatedTokens: 12,
      cost: { usd: 0.0123, rule: "static-batch" },
    });
    expect(breakdown).toEqual({
      queue_wait_ms: 2500,
      batcher_hold_ms: 1100,
      gpu_ms: 3500,
      gpu_batch: { id: "gpu_1", sequences: 5, kv_tokens: 900 },
      component: "llama-2-7b-ic",
      copy: { id: null, gpus: 2, usd_per_hour: expect.closeTo(24.58, 9) },
      attempts: 2,
      prompt_tokens: 40,
      generated_tokens: 12,
      cost: { usd: 0.0123, rule: "static-batch" },
    });
  });

  it("measures to the last claim on a job claimed before the first claim was kept", () => {
    const breakdown = jobBreakdown({
      createdAt: "2026-11-27T12:00:00.000Z", firstClaimedAt: undefined, startedAt: "2026-11-27T12:00:01.000Z",
      receivedMs: 0, gpuStartMs: 0, gpuEndMs: 0, gpuBatch: { id: "g", sequences: 1, kvTokens: 1 },
      component: { name: "c", accelerators_per_copy: 1, ...eightGpus }, attempts: 1, promptTokens: 1, generatedTokens: 1, cost: { usd: 0, rule: "rolling-share" },
    });
    expect(breakdown.queue_wait_ms).toBe(1000);
  });
});

describe("the breakdown of a finished job with no GPU outcome", () => {
  const record = {
    job_id: "job_1", tenant: "t", model: "llama-2-7b", request: { prompt: "hi", max_tokens: 8 }, prompt_tokens: 3, priority: 0,
    attempt: 2, created_at: "2026-12-07T10:00:00.000Z", first_claimed_at: "2026-12-07T10:00:04.000Z", started_at: "2026-12-07T10:00:09.000Z",
    component: "llama-2-7b-ic", expires_at: 0,
  } as const;

  it("says what its record says and charges it nothing: cancelled after two claims, queue wait to the first", () => {
    const view = toJobView({ ...record, status: "CANCELLED", finished_at: "2026-12-07T10:00:10.000Z" });
    expect(view.breakdown).toEqual(offGpuBreakdown(record));
    expect(view.breakdown).toMatchObject({ queue_wait_ms: 4_000, gpu_ms: null, gpu_batch: null, component: "llama-2-7b-ic", attempts: 2, prompt_tokens: 3, generated_tokens: 0, cost: { usd: 0, rule: "no-gpu-outcome" } });
  });

  it("has no queue wait when no batcher took it (expired waiting), and none at all while it is not finished", () => {
    const { first_claimed_at: _first, started_at: _started, component: _component, ...waiting } = record;
    expect(breakdownOf({ ...waiting, attempt: 0, status: "EXPIRED" })).toMatchObject({ queue_wait_ms: null, component: null, attempts: 0 });
    expect(breakdownOf({ ...record, status: "RUNNING" })).toBeUndefined();
    expect(toJobView({ ...record, status: "QUEUED" }).breakdown).toBeUndefined();
  });
});
