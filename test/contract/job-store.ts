import { expect, it } from "vitest";
import { ConflictError, ValidationError } from "#shared/core/errors";
import type { JobRecord } from "#shared/core/jobs";
import type { JobStore } from "#shared/ports";
import { uniqueSuffix } from "../helpers/local-aws.ts";

const at = (seconds: number) => new Date(Date.parse("2026-11-27T12:00:00.000Z") + seconds * 1000);
const id = (name: string) => `job_${name}_${uniqueSuffix()}`;
const placement = (window: string) => ({ gpu_batch_id: window, gpu_batch_size: 7, component: "llama-2-7b-ic" });
const result = { text: "one two three", prompt_tokens: 37, completion_tokens: 3, finish_reason: "length" as const };
const deadLetter = { code: "dead_letter", message: "delivered 5 times" };
/** The version a change of `job` gives it: every change moves it on by one, from 0 for a record without one. */
const versionAfter = (job: JobRecord | undefined) => (job?.version ?? 0) + 1;

/** A job with every optional part filled in, so that a round trip shows nothing is lost. */
export function fullJob(jobId: string, change: Partial<JobRecord> = {}): JobRecord {
  return {
    job_id: jobId,
    tenant: "acme",
    status: "QUEUED",
    model: "llama-2-7b",
    request: {
      messages: [
        { role: "system", content: "You are terse." },
        { role: "user", content: "Name three queues. Ünïcödé and emoji 🚀 survive." },
      ],
      max_tokens: 64,
      temperature: 0.7,
      top_p: 0.9,
      stop: ["\n\n", "END"],
      seed: 42,
    },
    prompt_tokens: 37,
    max_tokens: 64,
    priority: 3,
    deadline: "2026-11-27T13:00:00.000Z",
    idempotency_key: `key-${jobId}`,
    metadata: { team: "search", run: "nightly" },
    attempt: 0,
    created_at: "2026-11-27T12:00:00.000Z",
    expires_at: Date.parse("2026-12-27T12:00:00Z") / 1000,
    ...change,
  };
}

/** What every JobStore does: the DynamoDB store is the reference, the memory one must match it. */
export function jobStoreContract(makeStore: () => Promise<JobStore>): void {
  async function storeWith(...jobs: JobRecord[]): Promise<JobStore> {
    const store = await makeStore();
    for (const job of jobs) await store.create([job]);
    return store;
  }

  it("gives back a created job exactly as written, nested request and metadata included", async () => {
    // Prepare
    const job = fullJob(id("roundtrip"), { batch_id: `batch_${uniqueSuffix()}`, custom_id: "line-1", batch_line: 1, waiting_reason: "warming" });
    const store = await makeStore();

    // Act
    await store.create([job]);

    // Assess
    expect(await store.get(job.job_id)).toEqual(job);
  });

  it("gives undefined for a job that does not exist", async () => {
    const store = await makeStore();
    expect(await store.get(id("missing"))).toBeUndefined();
  });

  it("refuses to create another job under an id that exists, and leaves the first one as it was", async () => {
    // Prepare
    const job = fullJob(id("dup"));
    const store = await storeWith(job);

    // Act
    const again = store.create([{ ...job, tenant: "globex" }]);

    // Assess
    await expect(again).rejects.toBeInstanceOf(ConflictError);
    expect(await store.get(job.job_id)).toEqual(job);
  });

  it("takes the same job created again (tenant and creation time) for its own write whose answer was lost, and writes nothing", async () => {
    // Prepare
    const job = fullJob(id("retried-create"));
    const store = await storeWith(job);
    const claimed = await store.claim(job.job_id, placement("win_1"), at(1));

    // Act
    const again = store.create([job]);

    // Assess
    await expect(again).resolves.toBeUndefined();
    expect(await store.get(job.job_id)).toEqual(claimed);
  });

  it("claims a QUEUED job as attempt 1 with its placement and no waiting reason, and a RUNNING one again as attempt 2", async () => {
    // Prepare
    const job = fullJob(id("claim"), { waiting_reason: "warming" });
    const store = await storeWith(job);

    // Act
    const first = await store.claim(job.job_id, placement("win_a"), at(1));
    const second = await store.claim(job.job_id, placement("win_b"), at(2));

    // Assess
    const { waiting_reason: _, ...withoutReason } = job;
    expect(first).toEqual({ ...withoutReason, status: "RUNNING", attempt: 1, version: 1, started_at: at(1).toISOString(), first_claimed_at: at(1).toISOString(), gpu_batch_id: "win_a", gpu_batch_size: 7, component: "llama-2-7b-ic" });
    expect(first).not.toHaveProperty("waiting_reason");
    // The first claim's time stays: the queue wait is measured to it.
    expect(second).toMatchObject({ status: "RUNNING", attempt: 2, gpu_batch_id: "win_b", started_at: at(2).toISOString(), first_claimed_at: at(1).toISOString() });
    expect(await store.get(job.job_id)).toEqual(second);
  });

  it("moves a job's version on by one with each change it makes: claim, put back to wait, claim again, finish", async () => {
    // Prepare: a job as submissions now create it
    const job = fullJob(id("versions"), { version: 1 });
    const store = await storeWith(job);

    // Act
    const claimed = await store.claim(job.job_id, placement("win_1"), at(1));
    const waiting = await store.noteWaiting(job.job_id, "warming", 1);
    const noted = await store.noteWaiting(job.job_id, "warming");
    const reclaimed = await store.claim(job.job_id, placement("win_2"), at(2));
    const finished = await store.finish(job.job_id, 1, { status: "SUCCEEDED", result }, at(3));

    // Assess
    expect([claimed, waiting, noted, reclaimed, finished].map((j) => j?.version)).toEqual([2, 3, 4, 5, 6]);
    expect(await store.get(job.job_id)).toEqual(finished);
  });

  it("reads a record stored before versions without one, and its next change makes it version 1", async () => {
    // Prepare
    const job = fullJob(id("unversioned"));
    const store = await storeWith(job);

    // Act
    const before = await store.get(job.job_id);
    const cancelled = await store.endUnfinished(job.job_id, { status: "CANCELLED", error: { code: "cancelled", message: "by its owner" } }, at(1));

    // Assess
    expect(before).not.toHaveProperty("version");
    expect(cancelled?.version).toBe(1);
  });

  it("moves no version when a change is refused, and once only for a change repeated after its answer was lost", async () => {
    // Prepare: claimed twice (version 3), the first attempt's result then comes too late
    const job = fullJob(id("versions-fenced"), { version: 1 });
    const store = await storeWith(job);
    await store.claim(job.job_id, placement("win_1"), at(1));
    await store.claim(job.job_id, placement("win_2"), at(2));

    // Act
    const stale = await store.finish(job.job_id, 1, { status: "SUCCEEDED", result }, at(3));
    const staleWait = await store.noteWaiting(job.job_id, "warming", 1);
    const finished = await store.finish(job.job_id, 2, { status: "SUCCEEDED", result }, at(4));
    const retried = await store.finish(job.job_id, 2, { status: "SUCCEEDED", result }, at(4));
    const ended = await store.endUnfinished(job.job_id, { status: "FAILED", error: deadLetter }, at(5));

    // Assess
    expect([stale, staleWait, ended]).toEqual([undefined, undefined, undefined]);
    expect(finished?.version).toBe(4);
    expect(retried).toEqual(finished);
    expect((await store.get(job.job_id))?.version).toBe(4);
  });

  it("keeps the first claim's time through a wait for warming and the claim after it", async () => {
    // Prepare
    const job = fullJob(id("first-claim"));
    const store = await storeWith(job);
    await store.claim(job.job_id, placement("win_1"), at(1));
    await store.noteWaiting(job.job_id, "warming", 1);

    // Act
    const again = await store.claim(job.job_id, placement("win_2"), at(30));

    // Assess
    expect(again).toMatchObject({ attempt: 1, started_at: at(30).toISOString(), first_claimed_at: at(1).toISOString() });
  });

  it("writes the breakdown with the outcome, and gives it back exactly, its null copy id included", async () => {
    // Prepare
    const job = fullJob(id("breakdown"));
    const failing = fullJob(id("breakdown-failed"));
    const store = await storeWith(job, failing);
    const claimed = await store.claim(job.job_id, placement("win_1"), at(1));
    await store.claim(failing.job_id, placement("win_1"), at(1));
    const breakdown = {
      queue_wait_ms: 1000, batcher_hold_ms: 120, gpu_ms: 2345.5,
      gpu_batch: { id: "win_1", sequences: 7, kv_tokens: 1234 },
      component: "llama-2-7b-ic", copy: { id: null, gpus: 1, usd_per_hour: 12.29 },
      attempts: 1, prompt_tokens: 37, generated_tokens: 3,
      cost: { usd: 0.001_234_567_89, rule: "static-batch" as const },
    };

    // Act
    const finished = await store.finish(job.job_id, 1, { status: "SUCCEEDED", result, breakdown }, at(4));
    const failed = await store.finish(failing.job_id, 1, { status: "FAILED", error: { code: "model_error", message: "refused" }, breakdown: { ...breakdown, generated_tokens: 0 } }, at(5));

    // Assess
    expect(finished).toEqual({ ...claimed, status: "SUCCEEDED", result, breakdown, version: versionAfter(claimed), finished_at: at(4).toISOString() });
    expect(await store.get(job.job_id)).toEqual(finished);
    expect(failed?.breakdown).toEqual({ ...breakdown, generated_tokens: 0 });
  });

  it("does not claim a finished job nor one that does not exist", async () => {
    // Prepare
    const job = fullJob(id("claim-finished"));
    const store = await storeWith(job);
    await store.claim(job.job_id, placement("win_1"), at(1));
    const finished = await store.finish(job.job_id, 1, { status: "SUCCEEDED", result }, at(2));

    // Act
    const again = await store.claim(job.job_id, placement("win_2"), at(3));
    const missing = await store.claim(id("never-created"), placement("win_3"), at(3));

    // Assess
    expect(again).toBeUndefined();
    expect(missing).toBeUndefined();
    expect(await store.get(job.job_id)).toEqual(finished);
  });

  it("fences finish on the attempt: a stale attempt writes nothing, the latest writes its result once", async () => {
    // Prepare
    const job = fullJob(id("fence"));
    const store = await storeWith(job);
    await store.claim(job.job_id, placement("win_1"), at(1));
    const latest = await store.claim(job.job_id, placement("win_2"), at(2));

    // Act
    const stale = await store.finish(job.job_id, 1, { status: "SUCCEEDED", result: { ...result, text: "stale" } }, at(3));
    const afterStale = await store.get(job.job_id);
    const finished = await store.finish(job.job_id, 2, { status: "SUCCEEDED", result }, at(4));
    const twice = await store.finish(job.job_id, 2, { status: "SUCCEEDED", result: { ...result, text: "twice" } }, at(5));

    // Assess
    expect(stale).toBeUndefined();
    expect(afterStale).toEqual(latest);
    expect(finished).toEqual({ ...latest, status: "SUCCEEDED", result, version: versionAfter(latest), finished_at: at(4).toISOString() });
    expect(twice).toBeUndefined();
    expect(await store.get(job.job_id)).toEqual(finished);
  });

  it("stores a long generation's progress for the running attempt, extending what is stored, without moving the version", async () => {
    // Prepare
    const job = fullJob(id("progress"));
    const store = await storeWith(job);
    const claimed = await store.claim(job.job_id, placement("win_1"), at(1));
    const first = { text: " one two", tokens: 2, calls: 1, extra_prefill_tokens: 0 };
    const second = { text: " one two three 🚀", tokens: 4, calls: 2, extra_prefill_tokens: 2 };

    // Act
    const savedFirst = await store.saveProgress(job.job_id, 1, first, 0);
    const savedSecond = await store.saveProgress(job.job_id, 1, second, 2);

    // Assess
    expect([savedFirst, savedSecond]).toEqual([true, true]);
    expect(await store.get(job.job_id)).toEqual({ ...claimed, progress: second });
  });

  it("refuses progress of a stale attempt, of a finished job, or that does not extend what is stored; a repeat of its own write is taken", async () => {
    // Prepare
    const job = fullJob(id("progress-fence"));
    const store = await storeWith(job);
    await store.claim(job.job_id, placement("win_1"), at(1));
    const stored = { text: " one", tokens: 1, calls: 1, extra_prefill_tokens: 0 };
    await store.saveProgress(job.job_id, 1, stored, 0);

    // Act
    const behind = await store.saveProgress(job.job_id, 1, { ...stored, text: " uno", calls: 1 }, 0);
    const repeated = await store.saveProgress(job.job_id, 1, stored, 0);
    const later = await store.claim(job.job_id, placement("win_2"), at(2));
    const stale = await store.saveProgress(job.job_id, 1, { text: " one two", tokens: 2, calls: 2, extra_prefill_tokens: 1 }, 1);
    await store.finish(job.job_id, 2, { status: "SUCCEEDED", result }, at(3));
    const afterFinish = await store.saveProgress(job.job_id, 2, { text: " one two", tokens: 2, calls: 2, extra_prefill_tokens: 1 }, 1);

    // Assess
    expect(behind).toBe(false);
    expect(repeated).toBe(true);
    expect(stale).toBe(false);
    expect(later?.progress).toEqual(stored);
    expect(afterFinish).toBe(false);
    // The result's write leaves the text in the result only.
    const finished = await store.get(job.job_id);
    expect(finished?.progress).toBeUndefined();
    expect(finished?.result).toEqual(result);
  });

  it("counts subscribes on a job without moving its version, and every later change answers with the count", async () => {
    // Prepare
    const job = fullJob(id("subscribed"), { subscriptions: 0, version: 1 });
    const older = fullJob(id("subscribed-older"));
    const store = await storeWith(job, older);

    // Act
    const first = await store.noteSubscribed(job.job_id);
    const second = await store.noteSubscribed(job.job_id);
    const claimed = await store.claim(job.job_id, placement("win_1"), at(1));
    const finished = await store.finish(job.job_id, 1, { status: "SUCCEEDED", result }, at(2));
    const afterEnd = await store.noteSubscribed(job.job_id);
    const fromBefore = await store.noteSubscribed(older.job_id);
    const missing = await store.noteSubscribed(id("missing"));

    // Assess
    expect(first).toEqual({ ...job, subscriptions: 1 });
    expect(second).toEqual({ ...job, subscriptions: 2 });
    expect(claimed?.subscriptions).toBe(2);
    expect(finished?.subscriptions).toBe(2);
    expect(afterEnd).toEqual({ ...finished, subscriptions: 3 });
    expect(fromBefore).toEqual({ ...older, subscriptions: 1 });
    expect(missing).toBeUndefined();
    expect(await store.get(id("missing"))).toBeUndefined();
  });

  it("answers a finish repeated with the same attempt, status and time with the finished job: its own write whose answer was lost", async () => {
    // Prepare
    const job = fullJob(id("finish-retried"));
    const store = await storeWith(job);
    await store.claim(job.job_id, placement("win_1"), at(1));
    const finished = await store.finish(job.job_id, 1, { status: "SUCCEEDED", result }, at(2));

    // Act
    const retried = await store.finish(job.job_id, 1, { status: "SUCCEEDED", result }, at(2));

    // Assess
    expect(finished).toBeDefined();
    expect(retried).toEqual(finished);
  });

  it("records a FAILED outcome of the current attempt with its error and no result", async () => {
    // Prepare
    const job = fullJob(id("failed-outcome"));
    const store = await storeWith(job);
    await store.claim(job.job_id, placement("win_1"), at(1));
    const error = { code: "model_error", message: "model rejected the request" };

    // Act
    const finished = await store.finish(job.job_id, 1, { status: "FAILED", error }, at(2));

    // Assess
    expect(finished).toMatchObject({ status: "FAILED", error, attempt: 1, finished_at: at(2).toISOString() });
    expect(finished).not.toHaveProperty("result");
    expect(await store.get(job.job_id)).toEqual(finished);
  });

  it("does not finish a job that was never claimed", async () => {
    // Prepare
    const job = fullJob(id("finish-queued"));
    const store = await storeWith(job);

    // Act
    const finished = await store.finish(job.job_id, 0, { status: "SUCCEEDED", result }, at(1));

    // Assess
    expect(finished).toBeUndefined();
    expect(await store.get(job.job_id)).toEqual(job);
  });

  it("puts a claimed job back to QUEUED to wait, saying why and giving its attempt back", async () => {
    // Prepare
    const job = fullJob(id("wait"));
    const store = await storeWith(job);
    const claimed = await store.claim(job.job_id, placement("win_1"), at(1));

    // Act
    const waiting = await store.noteWaiting(job.job_id, "warming", 1);
    const next = await store.claim(job.job_id, placement("win_2"), at(2));

    // Assess
    expect(waiting).toEqual({ ...claimed, status: "QUEUED", waiting_reason: "warming", attempt: 0, version: versionAfter(claimed) });
    expect(next).toMatchObject({ status: "RUNNING", attempt: 1 });
    expect(next).not.toHaveProperty("waiting_reason");
  });

  it("leaves a job RUNNING when a later attempt holds it", async () => {
    // Prepare: the message came back and another batcher claimed the job again.
    const job = fullJob(id("wait-stale"));
    const store = await storeWith(job);
    await store.claim(job.job_id, placement("win_1"), at(1));
    const latest = await store.claim(job.job_id, placement("win_2"), at(2));

    // Act
    const stale = await store.noteWaiting(job.job_id, "warming", 1);

    // Assess
    expect(stale).toBeUndefined();
    expect(await store.get(job.job_id)).toEqual(latest);
  });

  it("notes why an unfinished job waits without claiming it, whatever its status, and not for a finished or missing job", async () => {
    // Prepare
    const [queued, running, done] = [fullJob(id("note-queued")), fullJob(id("note-running")), fullJob(id("note-done"))];
    const store = await storeWith(queued, running, done);
    const claimed = await store.claim(running.job_id, placement("win_1"), at(1));
    await store.claim(done.job_id, placement("win_1"), at(1));
    const finished = await store.finish(done.job_id, 1, { status: "SUCCEEDED", result }, at(2));

    // Act
    const notedQueued = await store.noteWaiting(queued.job_id, "warming");
    const notedRunning = await store.noteWaiting(running.job_id, "no room");
    const notedDone = await store.noteWaiting(done.job_id, "warming");
    const notedMissing = await store.noteWaiting(id("never-created"), "warming");

    // Assess
    expect(notedQueued).toEqual({ ...queued, waiting_reason: "warming", version: versionAfter(queued) });
    expect(notedRunning).toEqual({ ...claimed, waiting_reason: "no room", version: versionAfter(claimed) });
    expect(notedDone).toBeUndefined();
    expect(notedMissing).toBeUndefined();
    expect(await store.get(done.job_id)).toEqual(finished);
  });

  it("ends an unfinished job whatever its attempt, and leaves a finished one alone", async () => {
    // Prepare
    const [queued, running, done] = [fullJob(id("end-queued")), fullJob(id("end-running")), fullJob(id("end-done"))];
    const store = await storeWith(queued, running, done);
    await store.claim(running.job_id, placement("win_1"), at(1));
    await store.claim(done.job_id, placement("win_1"), at(1));
    const finished = await store.finish(done.job_id, 1, { status: "SUCCEEDED", result }, at(2));

    // Act
    const endedQueued = await store.endUnfinished(queued.job_id, { status: "FAILED", error: deadLetter }, at(3));
    const endedRunning = await store.endUnfinished(running.job_id, { status: "CANCELLED", error: { code: "cancelled", message: "by its owner" } }, at(3));
    const endedDone = await store.endUnfinished(done.job_id, { status: "EXPIRED", error: { code: "expired", message: "past its deadline" } }, at(3));
    const endedMissing = await store.endUnfinished(id("never-created"), { status: "FAILED", error: deadLetter }, at(3));

    // Assess
    expect(endedQueued).toEqual({ ...queued, status: "FAILED", error: deadLetter, version: versionAfter(queued), finished_at: at(3).toISOString() });
    expect(endedRunning).toMatchObject({ status: "CANCELLED", attempt: 1, gpu_batch_id: "win_1" });
    expect(endedDone).toBeUndefined();
    expect(endedMissing).toBeUndefined();
    expect(await store.get(done.job_id)).toEqual(finished);
  });

  it("takes the fence from the batcher running a job that was ended: its result, wait or next claim writes nothing", async () => {
    // Prepare
    const job = fullJob(id("ended-fence"));
    const store = await storeWith(job);
    await store.claim(job.job_id, placement("win_1"), at(1));
    const cancelled = await store.endUnfinished(job.job_id, { status: "CANCELLED", error: { code: "cancelled", message: "by its owner" } }, at(2));

    // Act
    const finished = await store.finish(job.job_id, 1, { status: "SUCCEEDED", result }, at(3));
    const waiting = await store.noteWaiting(job.job_id, "warming", 1);
    const claimed = await store.claim(job.job_id, placement("win_2"), at(3));

    // Assess
    expect([finished, waiting, claimed]).toEqual([undefined, undefined, undefined]);
    expect(await store.get(job.job_id)).toEqual(cancelled);
  });

  it("answers an ending repeated with the same status, error and time with the ended job: its own write whose answer was lost", async () => {
    // Prepare
    const job = fullJob(id("end-retried"));
    const store = await storeWith(job);
    const ended = await store.endUnfinished(job.job_id, { status: "FAILED", error: deadLetter }, at(1));

    // Act
    const retried = await store.endUnfinished(job.job_id, { status: "FAILED", error: deadLetter }, at(1));
    const later = await store.endUnfinished(job.job_id, { status: "FAILED", error: deadLetter }, at(2));

    // Assess
    expect(ended).toBeDefined();
    expect(retried).toEqual(ended);
    expect(later).toBeUndefined();
  });

  it("creates a batch of 60 jobs at once and lists them 25 at a time in batch_line order until the cursor runs out", async () => {
    // Prepare
    const store = await makeStore();
    const batchId = `batch_${uniqueSuffix()}`;
    const lines = Array.from({ length: 60 }, (_, i) => i + 1);
    // Written out of order, so the order read back comes from the index, not from the writes.
    const jobs = lines.toReversed().map((line) => fullJob(id(`line${line}`), { batch_id: batchId, batch_line: line, custom_id: `c-${line}` }));
    await store.create([fullJob(id("other"), { batch_id: `batch_${uniqueSuffix()}`, batch_line: 1 })]);

    // Act
    await store.create(jobs);
    const pages: JobRecord[][] = [];
    let cursor: string | undefined;
    do {
      const page = await store.listByBatch(batchId, { limit: 25, cursor });
      pages.push([...page.items]);
      cursor = page.cursor;
    } while (cursor !== undefined && pages.length < 10);

    // Assess
    expect(pages.map((p) => p.length)).toEqual([25, 25, 10]);
    expect(pages.flat().map((j) => j.batch_line)).toEqual(lines);
    expect(pages.flat()).toEqual(expect.arrayContaining(jobs));
  });

  it("gives a cursor with every full page, as DynamoDB's Limit does: a batch filling its last page ends on an empty one", async () => {
    // Prepare
    const store = await makeStore();
    const batchId = `batch_${uniqueSuffix()}`;
    await store.create([1, 2, 3, 4].map((line) => fullJob(id(`even${line}`), { batch_id: batchId, batch_line: line })));

    // Act
    const first = await store.listByBatch(batchId, { limit: 2 });
    const second = await store.listByBatch(batchId, { limit: 2, cursor: first.cursor });
    const third = await store.listByBatch(batchId, { limit: 2, cursor: second.cursor });

    // Assess
    const lines = (page: { items: readonly JobRecord[] }) => page.items.map((j) => j.batch_line);
    expect([lines(first), lines(second), lines(third)]).toEqual([[1, 2], [3, 4], []]);
    expect([first.cursor, second.cursor]).toEqual([expect.any(String), expect.any(String)]);
    expect(third.cursor).toBeUndefined();
  });

  it("gives an empty page and no cursor for a batch with no jobs", async () => {
    const store = await makeStore();
    expect(await store.listByBatch(`batch_${uniqueSuffix()}`, { limit: 25 })).toEqual({ items: [], cursor: undefined });
  });

  it("refuses a cursor it did not hand out, and one of another batch, as a ValidationError on the cursor", async () => {
    // Prepare
    const [batchA, batchB] = [`batch_a_${uniqueSuffix()}`, `batch_b_${uniqueSuffix()}`];
    const store = await makeStore();
    await store.create([1, 2, 3].map((line) => fullJob(id(`a${line}`), { batch_id: batchA, batch_line: line })));
    await store.create([1, 2, 3].map((line) => fullJob(id(`b${line}`), { batch_id: batchB, batch_line: line })));
    const { cursor: cursorOfA } = await store.listByBatch(batchA, { limit: 2 });
    const wrongKey = Buffer.from(JSON.stringify({ nope: 1 })).toString("base64url");

    // Act
    const refused = await Promise.all(
      ["not a cursor", wrongKey, cursorOfA].map((cursor) => store.listByBatch(batchB, { limit: 2, cursor }).then(() => undefined, (error: unknown) => error)),
    );

    // Assess
    expect(cursorOfA).toBeDefined();
    for (const error of refused) {
      expect(error).toBeInstanceOf(ValidationError);
      expect(error).toMatchObject({ field: "cursor" });
    }
  });

  it("lists a model's jobs created since a time, oldest first, with what a trace needs, and keeps the newest when bounded", async () => {
    // Prepare: a model of its own, so that the other tests' jobs stay out
    const model = `model-${uniqueSuffix()}`;
    const store = await makeStore();
    const jobs = [0, 10, 20, 30, 40].map((s, i) =>
      fullJob(id(`recent${i}`), { model, created_at: at(s).toISOString(), prompt_tokens: 100 + i, request: { ...fullJob("x").request, max_tokens: 200 + i }, max_tokens: 200 + i, lane: i % 2 === 0 ? "interactive" : "batch" }),
    );
    await store.create([...jobs, fullJob(id("other-model"), { created_at: at(25).toISOString() })]);

    // Act
    const since15 = await store.listRecentByModel(model, at(15), 100);
    const newestTwo = await store.listRecentByModel(model, at(0), 2);

    // Assess
    expect(since15).toEqual([
      { created_at: at(20).toISOString(), prompt_tokens: 102, max_tokens: 202, lane: "interactive" },
      { created_at: at(30).toISOString(), prompt_tokens: 103, max_tokens: 203, lane: "batch" },
      { created_at: at(40).toISOString(), prompt_tokens: 104, max_tokens: 204, lane: "interactive" },
    ]);
    expect(newestTwo.map((j) => j.prompt_tokens)).toEqual([103, 104]);
    expect(await store.listRecentByModel(`model-${uniqueSuffix()}`, at(0), 10)).toEqual([]);
  });

  it("leaves out of a trace a job stored before max_tokens was kept at the top level", async () => {
    const model = `model-${uniqueSuffix()}`;
    const store = await makeStore();
    const { max_tokens: _kept, ...older } = fullJob(id("older"), { model, created_at: at(10).toISOString() });
    await store.create([older, fullJob(id("newer"), { model, created_at: at(20).toISOString() })]);
    expect(await store.listRecentByModel(model, at(0), 10)).toEqual([{ created_at: at(20).toISOString(), prompt_tokens: 37, max_tokens: 64, lane: undefined }]);
  });
}
