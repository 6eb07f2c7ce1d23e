import { expect, it } from "vitest";
import type { CapacityLedger, LedgerEntry } from "#shared/ports";
import { uniqueSuffix } from "../helpers/local-aws.ts";

const noon = Date.parse("2026-11-27T12:00:00.000Z");
const at = (ms: number) => new Date(noon + ms);
const inAMinute = at(60_000);
const newComponent = () => `component-${uniqueSuffix()}`;
const holding = (sequences: number, tokens: number, oldestWaitingMs?: number): LedgerEntry => ({ load: { sequences, tokens }, oldestWaitingMs });

export function capacityLedgerContract(makeLedger: () => Promise<CapacityLedger>): void {
  it("sees nothing held on a component nobody published on", async () => {
    const ledger = await makeLedger();
    expect(await ledger.others(newComponent(), "me", at(0))).toEqual({ load: { sequences: 0, tokens: 0 }, oldestWaitingMs: undefined, interactiveWaiting: false, interactiveLoad: { sequences: 0, tokens: 0 }, cancelled: [], waitingHolders: [] });
  });

  it("sums what the other holders of the component hold, leaving out the asking holder and other components", async () => {
    // Prepare
    const ledger = await makeLedger();
    const [component, elsewhere] = [newComponent(), newComponent()];
    await ledger.publish(component, "me", holding(50, 5_000), inAMinute);
    await ledger.publish(component, "b", holding(3, 300), inAMinute);
    await ledger.publish(component, "c", holding(4, 400), inAMinute);
    await ledger.publish(elsewhere, "d", holding(7, 700), inAMinute);

    // Act
    const others = await ledger.others(component, "me", at(0));

    // Assess
    expect(others).toEqual({ load: { sequences: 7, tokens: 700 }, oldestWaitingMs: undefined, interactiveWaiting: false, interactiveLoad: { sequences: 0, tokens: 0 }, cancelled: [], waitingHolders: [] });
    expect((await ledger.others(component, "b", at(0))).load).toEqual({ sequences: 54, tokens: 5_400 });
  });

  it("says the latest any other live holder pulls from the queues until", async () => {
    // Prepare
    const ledger = await makeLedger();
    const component = newComponent();
    await ledger.publish(component, "me", { ...holding(1, 100), topUpUntilMs: noon + 90_000 }, inAMinute);
    await ledger.publish(component, "b", { ...holding(1, 100), topUpUntilMs: noon + 30_000 }, inAMinute);
    await ledger.publish(component, "c", { ...holding(1, 100), topUpUntilMs: noon + 45_000 }, inAMinute);
    await ledger.publish(component, "gone", { ...holding(1, 100), topUpUntilMs: noon + 80_000 }, at(10_000));
    await ledger.publish(component, "quiet", holding(1, 100), inAMinute);

    // Act
    const others = await ledger.others(component, "me", at(10_000));

    // Assess
    expect(others.topUpUntilMs).toBe(noon + 45_000);
    expect((await ledger.others(component, "c", at(10_000))).topUpUntilMs).toBe(noon + 90_000);
    expect((await ledger.others(newComponent(), "me", at(0))).topUpUntilMs).toBeUndefined();
  });

  it("leaves out entries that have expired, from the instant they expire", async () => {
    // Prepare
    const ledger = await makeLedger();
    const component = newComponent();
    await ledger.publish(component, "short", holding(2, 200, noon - 9_000), at(10_000));
    await ledger.publish(component, "long", holding(3, 300), at(20_000));

    // Act
    const before = await ledger.others(component, "me", at(9_999));
    const atExpiry = await ledger.others(component, "me", at(10_000));
    const after = await ledger.others(component, "me", at(20_000));

    // Assess
    expect(before).toEqual({ load: { sequences: 5, tokens: 500 }, oldestWaitingMs: noon - 9_000, interactiveWaiting: false, interactiveLoad: { sequences: 0, tokens: 0 }, cancelled: [], waitingHolders: ["short"] });
    expect(atExpiry).toEqual({ load: { sequences: 3, tokens: 300 }, oldestWaitingMs: undefined, interactiveWaiting: false, interactiveLoad: { sequences: 0, tokens: 0 }, cancelled: [], waitingHolders: [] });
    expect(after).toEqual({ load: { sequences: 0, tokens: 0 }, oldestWaitingMs: undefined, interactiveWaiting: false, interactiveLoad: { sequences: 0, tokens: 0 }, cancelled: [], waitingHolders: [] });
  });

  it("keeps expiries in whole seconds, rounded up: an entry lives to the end of the second it expires in", async () => {
    // Prepare
    const ledger = await makeLedger();
    const component = newComponent();
    await ledger.publish(component, "b", holding(1, 100), at(10_200));

    // Act
    const within = await ledger.others(component, "me", at(10_700));
    const after = await ledger.others(component, "me", at(11_000));

    // Assess
    expect([within.load.sequences, after.load.sequences]).toEqual([1, 0]);
  });

  it("gives the oldest wait among the other live holders, not the asking holder's own", async () => {
    // Prepare
    const ledger = await makeLedger();
    const component = newComponent();
    await ledger.publish(component, "me", holding(1, 100, noon - 60_000), inAMinute);
    await ledger.publish(component, "b", holding(1, 100, noon - 5_000), inAMinute);
    await ledger.publish(component, "c", holding(1, 100, noon - 8_000), inAMinute);
    await ledger.publish(component, "d", holding(1, 100), inAMinute);
    await ledger.publish(component, "expired", holding(1, 100, noon - 30_000), at(-1_000));

    // Act
    const others = await ledger.others(component, "me", at(0));

    // Assess
    expect(others.oldestWaitingMs).toBe(noon - 8_000);
  });

  it("says whether another live holder has an interactive job waiting, not counting the asking holder's own", async () => {
    // Prepare
    const ledger = await makeLedger();
    const component = newComponent();
    await ledger.publish(component, "me", { ...holding(1, 100, noon - 1_000), interactiveWaiting: true }, inAMinute);
    await ledger.publish(component, "batch-holder", holding(5, 500, noon - 9_000), inAMinute);
    const before = await ledger.others(component, "me", at(0));
    await ledger.publish(component, "fresh", { ...holding(0, 0, noon - 100), interactiveWaiting: true }, inAMinute);
    await ledger.publish(component, "expired", { ...holding(0, 0, noon - 100), interactiveWaiting: true }, at(-1_000));

    // Act
    const after = await ledger.others(component, "me", at(0));
    const seenByFresh = await ledger.others(component, "fresh", at(0));

    // Assess
    expect(before.interactiveWaiting).toBe(false);
    expect(after).toMatchObject({ interactiveWaiting: true, oldestWaitingMs: noon - 9_000 });
    expect(seenByFresh.interactiveWaiting).toBe(true);
  });

  it("sums the interactive-lane load of the other live holders, a part of their load", async () => {
    // Prepare
    const ledger = await makeLedger();
    const component = newComponent();
    await ledger.publish(component, "me", { ...holding(3, 3_000), interactiveLoad: { sequences: 3, tokens: 3_000 } }, inAMinute);
    await ledger.publish(component, "mixed", { ...holding(10, 10_000), interactiveLoad: { sequences: 2, tokens: 2_048 } }, inAMinute);
    await ledger.publish(component, "fresh", { ...holding(1, 1_024), interactiveLoad: { sequences: 1, tokens: 1_024 } }, inAMinute);
    await ledger.publish(component, "batch-only", { ...holding(5, 5_000), interactiveLoad: { sequences: 0, tokens: 0 } }, inAMinute);
    await ledger.publish(component, "says-nothing", holding(4, 4_000), inAMinute);
    await ledger.publish(component, "expired", { ...holding(1, 1_024), interactiveLoad: { sequences: 1, tokens: 1_024 } }, at(-1_000));

    // Act
    const others = await ledger.others(component, "me", at(0));
    const seenByFresh = await ledger.others(component, "fresh", at(0));

    // Assess
    expect(others.load).toEqual({ sequences: 20, tokens: 20_024 });
    expect(others.interactiveLoad).toEqual({ sequences: 3, tokens: 3_072 });
    expect(seenByFresh.interactiveLoad).toEqual({ sequences: 5, tokens: 5_048 });
  });

  it("says the latest time another live holder saw interactive work, not counting the asking holder's own", async () => {
    // Prepare
    const ledger = await makeLedger();
    const component = newComponent();
    await ledger.publish(component, "me", { ...holding(1, 100), interactiveSeenMs: noon - 100 }, inAMinute);
    await ledger.publish(component, "b", { ...holding(1, 100), interactiveSeenMs: noon - 4_000 }, inAMinute);
    await ledger.publish(component, "c", { ...holding(1, 100), interactiveSeenMs: noon - 2_000 }, inAMinute);
    await ledger.publish(component, "quiet", holding(1, 100), inAMinute);
    await ledger.publish(component, "expired", { ...holding(1, 100), interactiveSeenMs: noon - 10 }, at(-1_000));

    // Act
    const others = await ledger.others(component, "me", at(0));

    // Assess
    expect(others.interactiveSeenMs).toBe(noon - 2_000);
    expect((await ledger.others(component, "c", at(0))).interactiveSeenMs).toBe(noon - 100);
    expect((await ledger.others(newComponent(), "me", at(0))).interactiveSeenMs).toBeUndefined();
  });

  it("removes the entry of a holder that publishes nothing held and nothing waiting, before it would expire", async () => {
    // Prepare
    const ledger = await makeLedger();
    const component = newComponent();
    await ledger.publish(component, "b", holding(3, 300, noon - 1_000), inAMinute);

    // Act
    await ledger.publish(component, "b", holding(0, 0), inAMinute);

    // Assess
    expect(await ledger.others(component, "me", at(0))).toEqual({ load: { sequences: 0, tokens: 0 }, oldestWaitingMs: undefined, interactiveWaiting: false, interactiveLoad: { sequences: 0, tokens: 0 }, cancelled: [], waitingHolders: [] });
  });

  it("keeps the entry of a holder with nothing held but a job waiting for room", async () => {
    // Prepare
    const ledger = await makeLedger();
    const component = newComponent();

    // Act
    await ledger.publish(component, "b", holding(0, 0, noon - 2_000), inAMinute);

    // Assess
    expect(await ledger.others(component, "me", at(0))).toEqual({ load: { sequences: 0, tokens: 0 }, oldestWaitingMs: noon - 2_000, interactiveWaiting: false, interactiveLoad: { sequences: 0, tokens: 0 }, cancelled: [], waitingHolders: ["b"] });
  });

  it("names the other live holders with a job waiting for room, who share the room under the batch lane's cap", async () => {
    // Prepare
    const ledger = await makeLedger();
    const component = newComponent();
    await ledger.publish(component, "waits-1", holding(1, 100, noon - 2_000), inAMinute);
    await ledger.publish(component, "waits-2", holding(0, 0, noon - 1_000), inAMinute);
    await ledger.publish(component, "runs", holding(4, 400), inAMinute);
    await ledger.publish(component, "expired", holding(1, 100, noon - 3_000), at(0));

    // Act
    const seen = await ledger.others(component, "waits-1", at(0));

    // Assess
    expect(seen.waitingHolders).toEqual(["waits-2"]);
    expect((await ledger.others(component, "me", at(0))).waitingHolders.toSorted()).toEqual(["waits-1", "waits-2"]);
  });

  it("replaces a holder's entry when it publishes again, instead of adding to it", async () => {
    // Prepare
    const ledger = await makeLedger();
    const component = newComponent();
    await ledger.publish(component, "b", holding(3, 300, noon - 1_000), at(10_000));

    // Act
    await ledger.publish(component, "b", holding(2, 250), at(30_000));

    // Assess
    expect(await ledger.others(component, "me", at(20_000))).toEqual({ load: { sequences: 2, tokens: 250 }, oldestWaitingMs: undefined, interactiveWaiting: false, interactiveLoad: { sequences: 0, tokens: 0 }, cancelled: [], waitingHolders: [] });
  });

  it("gives every reader of the component the jobs marked cancelled there, as no load and no wait", async () => {
    // Prepare
    const ledger = await makeLedger();
    const [component, elsewhere] = [newComponent(), newComponent()];
    await ledger.publish(component, "b", holding(2, 200), inAMinute);
    await ledger.markCancelled(component, "job_1", inAMinute);
    await ledger.markCancelled(component, "job_2", inAMinute);
    await ledger.markCancelled(elsewhere, "job_3", inAMinute);

    // Act
    const seenByOther = await ledger.others(component, "me", at(0));
    const seenByHolder = await ledger.others(component, "b", at(0));

    // Assess
    expect(seenByOther).toEqual({ load: { sequences: 2, tokens: 200 }, oldestWaitingMs: undefined, interactiveWaiting: false, interactiveLoad: { sequences: 0, tokens: 0 }, cancelled: expect.arrayContaining(["job_1", "job_2"]), waitingHolders: [] });
    expect(seenByOther.cancelled).toHaveLength(2);
    expect(seenByHolder).toEqual({ load: { sequences: 0, tokens: 0 }, oldestWaitingMs: undefined, interactiveWaiting: false, interactiveLoad: { sequences: 0, tokens: 0 }, cancelled: expect.arrayContaining(["job_1", "job_2"]), waitingHolders: [] });
  });

  it("keeps a job marked once however often it is marked, and a holder's publishing leaves the marks alone", async () => {
    // Prepare
    const ledger = await makeLedger();
    const component = newComponent();
    await ledger.markCancelled(component, "job_1", at(10_000));
    await ledger.markCancelled(component, "job_1", inAMinute);

    // Act
    await ledger.publish(component, "b", holding(1, 100), inAMinute);
    await ledger.publish(component, "b", holding(0, 0), inAMinute);

    // Assess
    expect((await ledger.others(component, "me", at(30_000))).cancelled).toEqual(["job_1"]);
  });

  it("leaves out a cancel mark from the second it expires in, rounded up as entries are", async () => {
    // Prepare
    const ledger = await makeLedger();
    const component = newComponent();
    await ledger.markCancelled(component, "job_1", at(10_200));

    // Act
    const within = await ledger.others(component, "me", at(10_700));
    const after = await ledger.others(component, "me", at(11_000));

    // Assess
    expect([within.cancelled, after.cancelled]).toEqual([["job_1"], []]);
  });

  it("forgets a cancel mark once it is cleared, and takes the clearing of a mark that is not there", async () => {
    // Prepare
    const ledger = await makeLedger();
    const component = newComponent();
    await ledger.markCancelled(component, "job_1", inAMinute);
    await ledger.markCancelled(component, "job_2", inAMinute);

    // Act
    await ledger.clearCancelled(component, "job_1");
    await ledger.clearCancelled(component, "job_never_marked");

    // Assess
    expect((await ledger.others(component, "me", at(0))).cancelled).toEqual(["job_2"]);
  });

  it("stores a component's drift for the next batcher: read with the holders and alone, the last store winning, gone once expired", async () => {
    // Prepare
    const ledger = await makeLedger();
    const [component, elsewhere] = [newComponent(), newComponent()];
    const first = { decode: { logRatios: [0.1, 0.2], factor: 1 }, prefill: { logRatios: [], factor: 1 }, atMs: noon };
    const later = { decode: { logRatios: [0.69, 0.7, 0.71], factor: 2.01 }, prefill: { logRatios: [-0.05], factor: 1 }, atMs: noon + 5_000 };
    await ledger.publish(component, "b", holding(3, 300), inAMinute);
    await ledger.saveDrift(component, first, inAMinute);

    // Act
    await ledger.saveDrift(component, later, inAMinute);

    // Assess
    const others = await ledger.others(component, "me", at(0));
    expect(others.drift).toEqual(later);
    expect(others.load).toEqual({ sequences: 3, tokens: 300 });
    expect(others.waitingHolders).toEqual([]);
    expect(await ledger.drift(component, at(0))).toEqual(later);
    expect(await ledger.drift(elsewhere, at(0))).toBeUndefined();
    expect((await ledger.others(elsewhere, "me", at(0))).drift).toBeUndefined();
    expect(await ledger.drift(component, at(61_000))).toBeUndefined();
    expect((await ledger.others(component, "me", at(61_000))).drift).toBeUndefined();
  });
}
