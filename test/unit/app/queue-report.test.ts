import { describe, expect, it } from "vitest";
import { QueueReporter, serviceStateOf } from "#shared/app/batcher/queue-report";
import type { QueueBoard } from "#shared/core/queue-position";
import { defaultRouteSettings } from "#shared/core/route-settings";
import { defaultCatalog, memoryDeps } from "../../helpers/fakes.ts";

const route = defaultCatalog().routes.get("llama-2-7b");
if (!route) throw new Error("routes.yml has no llama-2-7b");
const settings = defaultRouteSettings(route);
const state = (held: { sequences: number; tokens: number }, jobsWaitingForRoom = false) =>
  serviceStateOf({ nowMs: 1_000, components: route.components, settings, heldOn: () => held, jobsWaitingForRoom });

describe("a batcher's report of its route's copies", () => {
  it("sums the copies' room and what every batcher holds on them", () => {
    expect(state({ sequences: 10, tokens: 5_000 }).service).toEqual({ atMs: 1_000, copies: 1, slots: 128, held: 10, tokens: route.limits.token_budget, heldTokens: 5_000 });
  });

  it("says jobs wait for room when a batcher holds some, or when the copies are full by sequences or by KV tokens", () => {
    expect(state({ sequences: 10, tokens: 5_000 }).backlogged).toBe(false);
    expect(state({ sequences: 10, tokens: 5_000 }, true).backlogged).toBe(true);
    expect(state({ sequences: 116, tokens: 5_000 }).backlogged).toBe(true);
    expect(state({ sequences: 109, tokens: 109 * 1024 }).backlogged).toBe(true);
    expect(state({ sequences: 90, tokens: 90 * 1024 }).backlogged).toBe(false);
  });
});

describe("a batcher's reports to its route's queue board", () => {
  it("hands each board it reads back to the run, and sends a last report for a latency factor alone", async () => {
    const deps = memoryDeps();
    const boards: QueueBoard[] = [];
    const reporter = new QueueReporter(deps, "llama-2-7b", (board) => boards.push(board));
    await deps.queueBoard.takeTickets("llama-2-7b", "interactive", 3);
    reporter.departed("interactive");
    await reporter.maybeReport(deps.time.nowMs, () => state({ sequences: 1, tokens: 1024 }));
    expect(boards.map((b) => [b.submitted.interactive, b.departed.interactive])).toEqual([[3, 1]]);

    // Nothing left the line since: a last report only for a factor measured since the last one.
    await reporter.finish(() => state({ sequences: 0, tokens: 0 }));
    expect(boards).toHaveLength(1);
    const latency = { factor: 1.2, atMs: deps.time.nowMs };
    await reporter.finish(() => ({ ...state({ sequences: 0, tokens: 0 }), latency }));
    expect(boards).toHaveLength(2);
    expect((await deps.queueBoard.read("llama-2-7b")).latency).toEqual(latency);
  });

  it("settles a lane its run found empty at its next report, to the tickets of the board read before: a ticket a killed submit took stops counting ahead; a lane that got jobs or tickets since is left", async () => {
    // Prepare: 3 interactive tickets, of which 1 never became a job (its submit was killed); 2 batch tickets, both jobs
    const deps = memoryDeps();
    const reporter = new QueueReporter(deps, "llama-2-7b");
    const report = () => reporter.finish(() => state({ sequences: 1, tokens: 1024 }));
    await deps.queueBoard.takeTickets("llama-2-7b", "interactive", 3);
    await deps.queueBoard.takeTickets("llama-2-7b", "batch", 2);
    reporter.departed("interactive");
    await report();

    // Act: both lanes answered empty; the batch lane then brought a job again
    reporter.departed("interactive");
    reporter.departed("batch");
    reporter.laneSeen("interactive", true);
    reporter.laneSeen("batch", true);
    reporter.laneSeen("batch", false);
    await report();
    const settled = (await deps.queueBoard.read("llama-2-7b")).departed;
    // Found empty again, but a ticket is taken before the next report: nothing to settle
    await deps.queueBoard.takeTickets("llama-2-7b", "batch", 1);
    reporter.laneSeen("batch", true);
    reporter.departed("batch");
    await deps.queueBoard.takeTickets("llama-2-7b", "batch", 1);
    await report();

    // Assess
    expect(settled).toEqual({ interactive: 3, batch: 1 });
    expect((await deps.queueBoard.read("llama-2-7b")).departed).toEqual({ interactive: 3, batch: 2 });
  });
});
