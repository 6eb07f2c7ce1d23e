import { describe, expect, it } from "vitest";
import type { BatchRecord } from "#shared/core/batches";
import type { JobRecord } from "#shared/core/jobs";
import { parseOpenAIBatchFile } from "#shared/core/openai-batch-file";
import { batchOutputLines } from "#shared/core/openai-batch-output";
import { applyChange, canMove, changeTo, isOpenAICreate, parseCreateRequest, toOpenAIBatch } from "#shared/core/openai-batches";
import { ValidationError } from "#shared/core/errors";
import { defaultCatalog } from "../../helpers/fakes.ts";

const catalog = defaultCatalog();
const now = new Date("2026-11-27T12:00:00Z");
const chat = (id: string, body: Record<string, unknown> = {}) =>
  JSON.stringify({ custom_id: id, method: "POST", url: "/v1/chat/completions", body: { model: "llama-2-7b", messages: [{ role: "user", content: "hi" }], max_tokens: 8, ...body } });

describe("the create request", () => {
  it("takes OpenAI's body and refuses a window other than 24h, naming the field", () => {
    expect(parseCreateRequest({ input_file_id: "file-1", endpoint: "/v1/completions", completion_window: "24h", metadata: { a: "b" } })).toMatchObject({ endpoint: "/v1/completions" });
    expect(() => parseCreateRequest({ input_file_id: "file-1", endpoint: "/v1/chat/completions", completion_window: "1h" })).toThrow(
      expect.objectContaining({ field: "completion_window" }) as ValidationError,
    );
    expect(() => parseCreateRequest({ input_file_id: "file-1", endpoint: "/v1/embeddings", completion_window: "24h" })).toThrow(expect.objectContaining({ field: "endpoint" }) as ValidationError);
    const tooMany = Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`k${i}`, "v"]));
    expect(() => parseCreateRequest({ input_file_id: "f", endpoint: "/v1/completions", completion_window: "24h", metadata: tooMany })).toThrow(expect.objectContaining({ field: "metadata" }) as ValidationError);
  });

  it("tells an OpenAI create from a JSON-lines file by its content type and shape", () => {
    const body = JSON.stringify({ input_file_id: "file-1", endpoint: "/v1/chat/completions", completion_window: "24h" });
    expect(isOpenAICreate("application/json", body)).toBe(true);
    expect(isOpenAICreate("application/x-ndjson", body)).toBe(false);
    expect(isOpenAICreate("application/json", JSON.stringify({ custom_id: "a", body: {} }))).toBe(false);
    expect(isOpenAICreate("application/json", `${chat("a")}\n${chat("b")}`)).toBe(false);
  });
});

describe("the input file", () => {
  it("maps chat lines to jobs with messages and completion lines to jobs with a prompt", () => {
    const parsed = parseOpenAIBatchFile([chat("a", { max_tokens: undefined, max_completion_tokens: 5, temperature: 0.2 }), chat("b", { messages: [{ role: "developer", content: "be brief" }, { role: "user", content: [{ type: "text", text: "hi" }] }] })].join("\n"), "/v1/chat/completions", catalog, now);
    expect(parsed.errors).toEqual([]);
    expect(parsed.lines.map((l) => [l.line, l.custom_id, l.job.request.max_tokens])).toEqual([[1, "a", 5], [2, "b", 8]]);
    expect(parsed.lines[1]?.job.request.messages).toEqual([{ role: "system", content: "be brief" }, { role: "user", content: "hi" }]);
    const completion = JSON.stringify({ custom_id: "c", method: "POST", url: "/v1/completions", body: { model: "llama-2-7b", prompt: "Once", max_tokens: 4 } });
    expect(parseOpenAIBatchFile(completion, "/v1/completions", catalog, now).lines[0]?.job.request.prompt).toBe("Once");
  });

  it("reports every bad line with its code, param and line, and queues nothing", () => {
    const text = [chat("a"), "not json", chat("a"), chat("d", { model: "gpt-9" }), JSON.stringify({ custom_id: "e", method: "POST", url: "/v1/completions", body: {} }), chat("f", { n: 2 })].join("\n");
    const parsed = parseOpenAIBatchFile(text, "/v1/chat/completions", catalog, now);
    expect(parsed.lines).toEqual([]);
    expect(parsed.errors.map((e) => [e.line, e.code, e.param])).toEqual([
      [2, "invalid_json_line", null],
      [3, "duplicate_custom_id", "custom_id"],
      [4, "invalid_model", "body.model"],
      [5, "invalid_url", "url"],
      [6, "invalid_request", "body.n"],
    ]);
  });

  it("refuses an empty file as one error on the input file", () => {
    expect(parseOpenAIBatchFile("\n\n", "/v1/chat/completions", catalog, now).errors).toEqual([expect.objectContaining({ code: "empty_file", param: "input_file_id", line: null })]);
  });
});

const job = (n: number, over: Partial<JobRecord>): JobRecord => ({
  job_id: `job_${n}`, tenant: "acme", status: "SUCCEEDED", model: "llama-2-7b", request: { max_tokens: 8 }, prompt_tokens: 3, priority: 5,
  batch_id: "batch_1", custom_id: `c${n}`, batch_line: n, attempt: 1, created_at: now.toISOString(), finished_at: now.toISOString(), expires_at: 0,
  result: { text: "hello", prompt_tokens: 3, completion_tokens: 2, finish_reason: "stop" }, ...over,
});

describe("the output and error lines", () => {
  it("writes succeeded jobs as chat.completion lines and the rest as error lines, in input order", () => {
    const jobs = [job(3, { status: "CANCELLED", result: undefined }), job(1, {}), job(2, { status: "FAILED", result: undefined, error: { code: "model_error", message: "too long" } }), job(4, { status: "EXPIRED", result: undefined })];
    const { output, errors } = batchOutputLines("/v1/chat/completions", jobs);
    const out = output.map((l) => JSON.parse(l) as Record<string, any>);
    expect(out).toEqual([expect.objectContaining({ custom_id: "c1", error: null, response: expect.objectContaining({ status_code: 200, request_id: "job_1" }) })]);
    expect(out[0]?.response.body).toMatchObject({ object: "chat.completion", model: "llama-2-7b", choices: [{ message: { role: "assistant", content: "hello" }, finish_reason: "stop" }], usage: { total_tokens: 5 } });
    expect(out[0]?.id).toMatch(/^batch_req_[0-9a-f]{32}$/);
    expect(errors.map((l) => JSON.parse(l) as Record<string, any>).map((l) => [l.custom_id, l.error.code, l.response?.status_code ?? null])).toEqual([
      ["c2", "model_error", 400],
      ["c3", "batch_cancelled", null],
      ["c4", "batch_expired", null],
    ]);
    // The same jobs give the same bytes: a finalize run again writes nothing new.
    expect(batchOutputLines("/v1/chat/completions", jobs)).toEqual({ output, errors });
  });

  it("puts a job's breakdown beside OpenAI's fields, as `batchline`, leaving the response body as OpenAI writes it", () => {
    const breakdown = {
      queue_wait_ms: 900, batcher_hold_ms: 40, gpu_ms: 1500, gpu_batch: { id: "gpu_1", sequences: 4, kv_tokens: 800 },
      component: "llama-2-7b-ic", copy: { id: null, gpus: 1, usd_per_hour: 12.29 }, attempts: 1, prompt_tokens: 3, generated_tokens: 2,
      cost: { usd: 0.0012, rule: "static-batch" as const },
    };
    const plain = JSON.parse(batchOutputLines("/v1/chat/completions", [job(1, {})]).output[0] ?? "{}");
    const { output, errors } = batchOutputLines("/v1/chat/completions", [job(1, { breakdown }), job(2, { status: "FAILED", result: undefined, error: { code: "model_error", message: "no" }, breakdown })]);
    const succeeded = JSON.parse(output[0] ?? "{}");
    expect(Object.keys(succeeded)).toEqual(["id", "custom_id", "response", "error", "batchline"]);
    expect(succeeded.batchline).toEqual({ breakdown });
    expect(succeeded.response).toEqual(plain.response);
    expect(JSON.parse(errors[0] ?? "{}").batchline).toEqual({ breakdown });
    expect(plain).not.toHaveProperty("batchline");
  });

  it("writes text_completion bodies for the completions endpoint", () => {
    const [line] = batchOutputLines("/v1/completions", [job(1, {})]).output;
    expect(JSON.parse(line ?? "{}").response.body).toMatchObject({ object: "text_completion", choices: [{ text: "hello" }] });
  });
});

describe("the status machine", () => {
  const batch: BatchRecord = { batch_id: "batch_1", tenant: "acme", created_at: now.toISOString(), total: 0, models: [], expires_at: 2e9, kind: "openai", status: "validating", window_expires_at: 1_795_867_200, sweep: "open", sweep_at: 1_795_867_200 };

  it("only moves forward", () => {
    expect(canMove("validating", "in_progress")).toBe(true);
    expect(canMove("in_progress", "finalizing")).toBe(true);
    expect(canMove("cancelling", "finalizing")).toBe(true);
    expect(canMove("finalizing", "in_progress")).toBe(false);
    expect(canMove("completed", "cancelling")).toBe(false);
    expect(canMove("in_progress", "completed")).toBe(false);
  });

  it("stamps each status it reaches, and leaves the sweep's index at a terminal one", () => {
    const running = applyChange(batch, changeTo(batch, "in_progress", 100, { total: 2 }));
    expect(running).toMatchObject({ status: "in_progress", in_progress_at: 100, total: 2, sweep_at: batch.window_expires_at });
    const finalizing = applyChange(running, changeTo(running, "finalizing", 200, { outcome: "completed" }));
    expect(finalizing).toMatchObject({ finalizing_at: 200, sweep_at: 500, outcome: "completed" });
    const done = applyChange(finalizing, changeTo(finalizing, "completed", 300, { output_file_id: "file-1", error_file_id: null }));
    expect(done).not.toHaveProperty("sweep");
    expect(done).not.toHaveProperty("sweep_at");
    expect(toOpenAIBatch(done, { total: 2, queued: 0, running: 0, succeeded: 1, failed: 0, cancelled: 1, expired: 0 })).toMatchObject({
      id: "batch_1", object: "batch", status: "completed", in_progress_at: 100, finalizing_at: 200, completed_at: 300, failed_at: null,
      expires_at: batch.window_expires_at, output_file_id: "file-1", error_file_id: null, request_counts: { total: 2, completed: 1, failed: 1 }, created_at: 1_795_780_800,
    });
  });

  it("answers a JSON-lines batch as an OpenAI batch object that keeps its own fields", () => {
    const { kind: _, status: __, window_expires_at: ___, sweep: ____, sweep_at: _____, ...jsonl } = batch;
    const view = toOpenAIBatch({ ...jsonl, models: ["llama-2-7b"], total: 1 }, { total: 1, queued: 0, running: 0, succeeded: 1, failed: 0, cancelled: 0, expired: 0 });
    expect(view).toMatchObject({ id: "batch_1", object: "batch", batch_id: "batch_1", status: "completed", created_at: now.toISOString(), models: ["llama-2-7b"], request_counts: { total: 1, completed: 1, succeeded: 1, failed: 0 } });
  });
});
