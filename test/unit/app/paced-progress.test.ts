import { describe, expect, it } from "vitest";
import { PacedBatchProgress } from "#shared/app/batcher/paced-progress";
import { submitBatch } from "#shared/app/submit";
import { batchTopic } from "#shared/core/events";
import { PROGRESS_GAP_MS } from "#shared/core/progress-pace";
import { connectionOf, memoryDeps } from "../../helpers/fakes.ts";

type Deps = ReturnType<typeof memoryDeps>;

async function batchOf(deps: Deps, lines: number): Promise<string> {
  const text = Array.from({ length: lines }, (_, i) => JSON.stringify({ custom_id: `l${i}`, body: { model: "llama-2-7b", prompt: `p${i}`, max_tokens: 2 } })).join("\n");
  return (await submitBatch(deps, "acme", text)).batch.batch_id;
}

/** Counts the look-ups of subscribers and of batches the reporter makes. */
function counted(deps: Deps) {
  const reads = { subscribers: 0, batches: 0 };
  const subscribers = deps.subscriptions.subscribers.bind(deps.subscriptions);
  deps.subscriptions.subscribers = (topic) => {
    reads.subscribers++;
    return subscribers(topic);
  };
  const get = deps.batches.get.bind(deps.batches);
  deps.batches.get = (batchId) => {
    reads.batches++;
    return get(batchId);
  };
  return reads;
}

/** A line of the batch changes every `everyMs` for `forMs`, on the fake clock. */
async function changeLines(deps: Deps, progress: PacedBatchProgress, batchId: string, everyMs: number, forMs: number): Promise<void> {
  for (let t = 0; t < forMs; t += everyMs) {
    progress.changed(batchId);
    await deps.sleep(everyMs);
  }
}

describe("PacedBatchProgress", () => {
  it("sends a batch's subscribers at most one batch.progress a second while lines change, and a last one at the end", async () => {
    // Prepare: a watched batch whose lines change 20 times a second for 5 s
    const deps = memoryDeps();
    const batchId = await batchOf(deps, 3);
    await deps.subscriptions.subscribe(batchTopic(batchId), connectionOf("watcher"));
    const reads = counted(deps);
    const progress = new PacedBatchProgress(deps);
    const startMs = deps.time.nowMs;

    // Act
    await changeLines(deps, progress, batchId, 50, 5_000);
    const whileRunning = deps.notifier.posts.filter((p) => p.event.type === "batch.progress").length;
    await progress.end();

    // Assert: one at the first change, then one a gap, and one more at the end (100 lines' worth of changes)
    const events = deps.notifier.eventsFor("watcher");
    expect(events.every((e) => e.type === "batch.progress")).toBe(true);
    expect(whileRunning).toBeLessThanOrEqual(Math.ceil((deps.time.nowMs - startMs) / PROGRESS_GAP_MS) + 1);
    expect(whileRunning).toBeGreaterThanOrEqual(4);
    expect(events).toHaveLength(whileRunning + 1);
    expect(events.at(-1)).toEqual({ type: "batch.progress", batch_id: batchId, request_counts: expect.objectContaining({ total: 3, queued: 3 }) });
    // The subscriber list is read again every 5 s, not per event; the final report reads it once more.
    expect(reads.subscribers).toBeLessThanOrEqual(3);
  });

  it("spaces a batch's events a gap apart, each with the counts when it goes out", async () => {
    // Prepare
    const deps = memoryDeps();
    const batchId = await batchOf(deps, 2);
    await deps.subscriptions.subscribe(batchTopic(batchId), connectionOf("watcher"));
    const progress = new PacedBatchProgress(deps);
    const sentAt: number[] = [];
    const post = deps.notifier.post.bind(deps.notifier);
    deps.notifier.post = async (connectionId, event) => {
      sentAt.push(deps.time.nowMs);
      return post(connectionId, event);
    };

    // Act
    await changeLines(deps, progress, batchId, 10, 3_000);
    await progress.end();

    // Assert: every two events of the run (the last one aside) at least a gap apart
    const duringRun = sentAt.slice(0, -1);
    for (let i = 1; i < duringRun.length; i++) expect((duringRun[i] ?? 0) - (duringRun[i - 1] ?? 0)).toBeGreaterThanOrEqual(PROGRESS_GAP_MS);
  });

  it("costs a batch nobody watches one subscriber look-up per reread period and no read of the batch until the end", async () => {
    // Prepare
    const deps = memoryDeps();
    const batchId = await batchOf(deps, 2);
    const reads = counted(deps);
    const progress = new PacedBatchProgress(deps);

    // Act: lines change for 12 s
    await changeLines(deps, progress, batchId, 100, 12_000);
    const runReads = { ...reads };
    await progress.end();

    // Assert: reads at 0, 5 and 10 s; the end's report reads the batch and its subscribers once
    expect(runReads).toEqual({ subscribers: 3, batches: 0 });
    expect(reads).toEqual({ subscribers: 4, batches: 1 });
    expect(deps.notifier.posts).toHaveLength(0);
  });

  it("sends only the last event for a change that comes after the run ended its waits", async () => {
    // Prepare
    const deps = memoryDeps();
    const batchId = await batchOf(deps, 1);
    await deps.subscriptions.subscribe(batchTopic(batchId), connectionOf("watcher"));
    const progress = new PacedBatchProgress(deps);

    // Act: two changes within a gap, then the end before the gap is out
    progress.changed(batchId);
    await deps.sleep(10);
    progress.changed(batchId);
    await progress.end();

    // Assert: the first change's event, then the end's; the waiting one gave way to it
    expect(deps.notifier.eventsFor("watcher")).toHaveLength(2);
  });
});
