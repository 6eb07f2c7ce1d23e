import { describe, expect, it } from "vitest";
import { finalizeBatch } from "#shared/app/batch-finalize";
import { ingestBatch } from "#shared/app/batch-ingest";
import { sweepBatches } from "#shared/app/batch-sweep";
import { cancelBatch } from "#shared/app/cancel";
import { createOpenAIBatch, describeOpenAIBatch, listOpenAIBatches } from "#shared/app/openai-batch-create";
import { reportBatchProgress } from "#shared/app/batch-progress";
import { defaultRouteSettings } from "#shared/core/route-settings";
import { runBatcher } from "../../helpers/batcher.ts";
import { memoryDeps } from "../../helpers/fakes.ts";

type Deps = ReturnType<typeof memoryDeps>;

const chatLine = (id: string) =>
  JSON.stringify({ custom_id: id, method: "POST", url: "/v1/chat/completions", body: { model: "llama-2-7b", messages: [{ role: "user", content: `say ${id}` }], max_tokens: 4 } });

async function inputFile(deps: Deps, lines: readonly string[], tenant = "acme"): Promise<string> {
  const fileId = `file-${deps.files.files.size + 1}`;
  const text = lines.join("\n") + "\n";
  await deps.blobs.put(`files/${fileId}`, text, "application/jsonl");
  await deps.files.create({ file_id: fileId, tenant, filename: "in.jsonl", purpose: "batch", bytes: text.length, created_at: 0, storage_key: `files/${fileId}` });
  return fileId;
}

/** What the batch-control queue's poller does: each step sent so far, until none is left. */
async function runSteps(deps: Deps): Promise<string[]> {
  const ran: string[] = [];
  for (let steps = deps.batchControl.take(); steps.length > 0; steps = deps.batchControl.take()) {
    for (const m of steps) {
      ran.push(m.step);
      await (m.step === "ingest" ? ingestBatch(deps, m.batch_id) : finalizeBatch(deps, m.batch_id));
    }
  }
  return ran;
}

async function fileLines(deps: Deps, fileId: unknown): Promise<Record<string, any>[]> {
  const file = await deps.files.get(String(fileId));
  const bytes = file && (await deps.blobs.get(file.storage_key));
  return new TextDecoder().decode(bytes).trim().split("\n").map((l) => JSON.parse(l) as Record<string, any>);
}

const create = async (deps: Deps, lines: readonly string[]) =>
  (await createOpenAIBatch(deps, "acme", { input_file_id: await inputFile(deps, lines), endpoint: "/v1/chat/completions", completion_window: "24h" })) as { id: string; status: string };

describe("OpenAI batches", () => {
  it("goes validating → in_progress → finalizing → completed, with its output in input order and one webhook event", async () => {
    // Prepare
    const deps = memoryDeps();
    const created = await create(deps, ["a", "b", "c"].map(chatLine));

    // Act
    expect(created.status).toBe("validating");
    expect(await runSteps(deps)).toEqual(["ingest"]);
    const running = await describeOpenAIBatch(deps, "acme", created.id);
    await runBatcher(deps);
    const steps = await runSteps(deps);

    // Assess
    expect(running).toMatchObject({ status: "in_progress", request_counts: { total: 3, completed: 0, failed: 0 } });
    expect(steps).toEqual(["finalize"]);
    const done = await describeOpenAIBatch(deps, "acme", created.id);
    expect(done).toMatchObject({ status: "completed", error_file_id: null, request_counts: { total: 3, completed: 3, failed: 0 }, completed_at: expect.any(Number), finalizing_at: expect.any(Number) });
    const out = await fileLines(deps, done.output_file_id);
    expect(out.map((l) => l.custom_id)).toEqual(["a", "b", "c"]);
    expect(out[0]?.response.body.object).toBe("chat.completion");
    expect((await deps.files.get(String(done.output_file_id)))?.purpose).toBe("batch_output");
    expect(deps.webhooks.events).toEqual([expect.objectContaining({ type: "batch.completed", tenant: "acme", data: { id: created.id }, id: expect.stringMatching(/^evt_[0-9a-f]{32}$/) })]);
  });

  it("fails a file with bad lines, naming each, and queues nothing", async () => {
    const deps = memoryDeps();
    const created = await create(deps, [chatLine("a"), "{", chatLine("a")]);
    await runSteps(deps);
    const failed = await describeOpenAIBatch(deps, "acme", created.id);
    expect(failed).toMatchObject({ status: "failed", failed_at: expect.any(Number), errors: { object: "list", data: [expect.objectContaining({ line: 2 }), expect.objectContaining({ line: 3, code: "duplicate_custom_id" })] } });
    expect(deps.jobs.jobs.size).toBe(0);
    expect(deps.queue.sent).toEqual([]);
    expect(deps.webhooks.events.map((e) => e.type)).toEqual(["batch.failed"]);
  });

  it("refuses a create naming another tenant's file, or a window other than 24h", async () => {
    const deps = memoryDeps();
    const foreign = await inputFile(deps, [chatLine("a")], "globex");
    await expect(createOpenAIBatch(deps, "acme", { input_file_id: foreign, endpoint: "/v1/chat/completions", completion_window: "24h" })).rejects.toMatchObject({ field: "input_file_id" });
    await expect(createOpenAIBatch(deps, "acme", { input_file_id: foreign, endpoint: "/v1/chat/completions", completion_window: "48h" })).rejects.toMatchObject({ field: "completion_window" });
    expect(deps.batches.batches.size).toBe(0);
  });

  it("cancels: cancelling → finalizing → cancelled, the lines that finished keep their results", async () => {
    // Prepare
    const deps = memoryDeps();
    const route = deps.catalog.routes.get("llama-2-7b");
    if (route) await deps.routeSettings.put("llama-2-7b", { ...defaultRouteSettings(route), top_up: false });
    const created = await create(deps, ["a", "b", "c"].map(chatLine));
    await runSteps(deps);
    await runBatcher(deps, 1);

    // Act
    await cancelBatch(deps, "acme", created.id);
    const cancelling = deps.batches.batches.get(created.id);
    await runSteps(deps);

    // Assess
    expect(cancelling).toMatchObject({ cancelling_at: expect.any(Number) });
    const done = await describeOpenAIBatch(deps, "acme", created.id);
    expect(done).toMatchObject({ status: "cancelled", request_counts: { total: 3, completed: 1, failed: 2 } });
    expect((await fileLines(deps, done.output_file_id)).map((l) => l.custom_id)).toEqual(["a"]);
    expect((await fileLines(deps, done.error_file_id)).map((l) => [l.custom_id, l.error.code])).toEqual([["b", "batch_cancelled"], ["c", "batch_cancelled"]]);
    expect(deps.webhooks.events.map((e) => e.type)).toEqual(["batch.cancelled"]);
  });

  it("expires a batch past its 24 h window: its unfinished lines end batch_expired and it ends expired", async () => {
    // Prepare
    const deps = memoryDeps();
    const created = await create(deps, ["a", "b"].map(chatLine));
    await runSteps(deps);

    // Act
    const early = await sweepBatches(deps);
    deps.time.advance(24 * 3600 * 1000 + 1000);
    const late = await sweepBatches(deps);
    await runSteps(deps);

    // Assess
    expect(early).toEqual({ expired: 0, resent: 0, failed: 0, requeued: 0 });
    expect(late).toEqual({ expired: 1, resent: 0, failed: 0, requeued: 0 });
    const done = await describeOpenAIBatch(deps, "acme", created.id);
    expect(done).toMatchObject({ status: "expired", expired_at: expect.any(Number), output_file_id: null });
    expect((await fileLines(deps, done.error_file_id)).map((l) => l.error.code)).toEqual(["batch_expired", "batch_expired"]);
    expect([...deps.jobs.jobs.values()].map((j) => j.error?.code)).toEqual(["batch_expired", "batch_expired"]);
    expect(deps.webhooks.events.map((e) => e.type)).toEqual(["batch.expired"]);
  });

  it("does each step once however often it is delivered or triggered", async () => {
    // Prepare
    const deps = memoryDeps();
    const created = await create(deps, ["a", "b"].map(chatLine));
    const [ingest] = deps.batchControl.take();

    // Act: the ingest delivered twice, progress reported thrice, the finalize delivered twice.
    await ingestBatch(deps, created.id);
    await ingestBatch(deps, created.id);
    await runBatcher(deps);
    await Promise.all([reportBatchProgress(deps, created.id), reportBatchProgress(deps, created.id)]);
    const finalizes = deps.batchControl.take();
    for (const m of [...finalizes, ...finalizes]) await finalizeBatch(deps, m.batch_id);
    const first = await describeOpenAIBatch(deps, "acme", created.id);

    // Assess
    expect(ingest?.step).toBe("ingest");
    expect(deps.jobs.jobs.size).toBe(2);
    expect(deps.jobs.finishes).toHaveLength(2);
    expect(finalizes).toEqual([{ step: "finalize", batch_id: created.id }]);
    expect(first.status).toBe("completed");
    expect(deps.files.files.size).toBe(2); // the input and one output file
    // Re-sent events carry the first one's id: a receiver dedupes them.
    expect(new Set(deps.webhooks.events.map((e) => e.id)).size).toBe(1);
  });

  it("sends a finalize again for a batch left finalizing past the stale step's time", async () => {
    const deps = memoryDeps();
    const created = await create(deps, [chatLine("a")]);
    await runSteps(deps);
    await runBatcher(deps);
    deps.batchControl.take(); // the finalize is lost
    deps.time.advance(301_000);
    expect(await sweepBatches(deps)).toEqual({ expired: 0, resent: 1, failed: 0, requeued: 0 });
    await runSteps(deps);
    expect((await describeOpenAIBatch(deps, "acme", created.id)).status).toBe("completed");
  });

  it("lists batches newest first in OpenAI's list shape, after an id", async () => {
    const deps = memoryDeps();
    const ids: string[] = [];
    for (const n of [1, 2, 3]) {
      ids.push((await create(deps, [chatLine(`x${n}`)])).id);
      deps.time.advance(1000);
    }
    const first = await listOpenAIBatches(deps, "acme", { limit: "2" });
    const second = await listOpenAIBatches(deps, "acme", { limit: "2", after: first.last_id ?? "" });
    expect(first).toMatchObject({ object: "list", first_id: ids[2], last_id: ids[1], has_more: true });
    expect(second).toMatchObject({ first_id: ids[0], last_id: ids[0], has_more: false });
    await expect(listOpenAIBatches(deps, "acme", { limit: "101" })).rejects.toMatchObject({ field: "limit" });
  });
});
