import { describe, expect, it } from "vitest";
import { processDelivery } from "#shared/app/process-delivery";
import { submitBatch, submitJob } from "#shared/app/submit";
import { defaultRouteSettings } from "#shared/core/route-settings";
import { memoryDeps } from "../../helpers/fakes.ts";

type Deps = ReturnType<typeof memoryDeps>;

const body = (prompt: string) => ({ model: "llama-2-7b", prompt, max_tokens: 8 });

async function interactive(deps: Deps, count: number, tag = "i"): Promise<void> {
  for (let i = 0; i < count; i++) await submitJob(deps, "acme", body(`${tag}${i}`));
}

async function batchFile(deps: Deps, count: number, tag = "b"): Promise<void> {
  const lines = Array.from({ length: count }, (_, i) => JSON.stringify({ custom_id: `${tag}${i}`, body: body(`${tag}${i}`) }));
  await submitBatch(deps, "acme", lines.join("\n"));
}

async function withSettings(deps: Deps, patch: object): Promise<void> {
  const route = deps.catalog.routes.get("llama-2-7b");
  if (!route) throw new Error("no default route");
  await deps.routeSettings.put("llama-2-7b", { ...defaultRouteSettings(route), ...patch }, deps.clock.now());
}

const promptsInCallOrder = (deps: Deps) => deps.invoker.calls.flatMap((c) => c.inputs.map((i) => i.prompt));

describe("the batcher's lanes, on memory fakes and FakeTime", () => {
  it("tops up from the interactive lane first: a batch lane's delivery starts the interactive jobs before the rest of its lane", async () => {
    const deps = memoryDeps();
    await batchFile(deps, 30);
    await interactive(deps, 5);
    const delivered = deps.queue.takeDelivery("llama-2-7b", 1, "batch");

    await processDelivery(deps, delivered, { topUpUntil: new Date(deps.clock.now().getTime() + 60_000) });

    const order = promptsInCallOrder(deps);
    expect(order).toHaveLength(35);
    expect(order[0]).toBe("b0");
    expect(order.slice(1, 6).toSorted()).toEqual(["i0", "i1", "i2", "i3", "i4"]);
    expect(deps.queue.receives[0]).toMatchObject({ lane: "interactive", got: 5 });
    // Every pulled message was deleted in the queue it came from (the fake refuses another lane's
    // receipt handle); only the delivered one is left for the event source mapping to acknowledge.
    expect(deps.queue.deleted).toHaveLength(34);
    expect([...deps.queue.inFlight.values()].map((m) => m.messageId)).toEqual([delivered[0]?.messageId]);
  });

  it("keeps the batch lane's floor of what it receives while the interactive lane is busy", async () => {
    const deps = memoryDeps();
    await withSettings(deps, { batch_lane_floor_percent: 20 });
    await batchFile(deps, 200);
    await interactive(deps, 200);

    await processDelivery(deps, deps.queue.takeDelivery("llama-2-7b", 1, "interactive"), { topUpUntil: new Date(deps.clock.now().getTime() + 60_000) });

    // While both lanes had messages (until the interactive one first came back empty), the batch
    // lane got at least its 20%, and not far above it: the interactive lane still came first.
    const untilEmpty = deps.queue.receives.slice(0, deps.queue.receives.findIndex((r) => r.lane === "interactive" && r.got === 0));
    const got = (lane: string) => untilEmpty.filter((r) => r.lane === lane).reduce((sum, r) => sum + r.got, 0);
    const share = got("batch") / (got("batch") + got("interactive"));
    expect(got("interactive")).toBe(199);
    expect(share).toBeGreaterThanOrEqual(0.2 - 10 / 250);
    expect(share).toBeLessThan(0.3);
    expect(promptsInCallOrder(deps)).toHaveLength(400);
  });

  it("holding only batch work, pulls nothing and starts nothing while another batcher's interactive job waits", async () => {
    const deps = memoryDeps();
    const now = deps.clock.now().getTime();
    await deps.ledger.publish("llama-2-7b-ic", "fresh-batcher", { load: { sequences: 0, tokens: 0 }, oldestWaitingMs: now, interactiveWaiting: true }, new Date(now + 60_000));
    await batchFile(deps, 3);
    const delivered = deps.queue.takeDelivery("llama-2-7b", 1, "batch");

    const report = await processDelivery(deps, delivered, { topUpUntil: new Date(now - 10_000) });

    expect(deps.invoker.calls).toHaveLength(0);
    expect(report.pulled).toBe(0);
    // Put back into its own lane as a new message.
    expect(deps.queue.requeued).toEqual([delivered[0]?.messageId]);
    expect(deps.queue.visible.filter((m) => m.lane === "batch")).toHaveLength(3);
  });
});
