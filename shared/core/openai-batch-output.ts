import { breakdownOf, type JobRecord } from "./jobs.ts";
import { derivedHex, epochSeconds, type OpenAIEndpoint } from "./openai-batches.ts";

/**
 * The lines of a finished batch's output file (succeeded jobs) and error file (the others), in
 * input order, as OpenAI writes them. Every id is derived from the job's: a finalize run again
 * writes the very same bytes.
 */
export function batchOutputLines(endpoint: OpenAIEndpoint, jobs: readonly JobRecord[]): { readonly output: string[]; readonly errors: string[] } {
  const output: string[] = [];
  const errors: string[] = [];
  for (const job of jobs.toSorted((a, b) => (a.batch_line ?? 0) - (b.batch_line ?? 0))) {
    if (job.status === "SUCCEEDED") output.push(JSON.stringify(outputLine(endpoint, job)));
    else errors.push(JSON.stringify(errorLine(job)));
  }
  return { output, errors };
}

const lineId = (job: JobRecord) => `batch_req_${derivedHex("line", job.job_id)}`;

/**
 * batchline's own part of a line, beside OpenAI's fields (docs/openai-compatible.md): where the
 * request's time and cost went. OpenAI's `response.body` stays the completion as OpenAI writes it.
 */
const batchlinePart = (job: JobRecord) => {
  const breakdown = breakdownOf(job);
  return breakdown ? { batchline: { breakdown } } : {};
};

export function outputLine(endpoint: OpenAIEndpoint, job: JobRecord) {
  return {
    id: lineId(job),
    custom_id: job.custom_id ?? null,
    response: { status_code: 200, request_id: job.job_id, body: responseBody(endpoint, job) },
    error: null,
    ...batchlinePart(job),
  };
}

/** The line of a job that did not succeed; a batch's cancel or expiry is said in OpenAI's codes. */
export function errorLine(job: JobRecord) {
  const error = lineError(job);
  const ranAndFailed = job.status === "FAILED";
  return {
    id: lineId(job),
    custom_id: job.custom_id ?? null,
    response: ranAndFailed
      ? { status_code: statusCodeOf(error.code), request_id: job.job_id, body: { error: { message: error.message, type: error.code, param: null, code: error.code } } }
      : null,
    error,
    ...batchlinePart(job),
  };
}

function lineError(job: JobRecord): { readonly code: string; readonly message: string } {
  if (job.status === "CANCELLED") return { code: "batch_cancelled", message: job.error?.message ?? "cancelled with its batch" };
  if (job.status === "EXPIRED") return { code: "batch_expired", message: job.error?.message ?? "the batch's completion window passed before this request ran" };
  if (job.status !== "FAILED") return { code: "not_finished", message: `the request was ${job.status.toLowerCase()} when the batch ended` };
  return { code: job.error?.code ?? "internal", message: job.error?.message ?? "the request failed" };
}

/** A model's refusal is the request's fault (400); anything else was ours or the endpoint's (500). */
const statusCodeOf = (code: string) => (code === "model_error" || code === "invalid_request" ? 400 : 500);

function responseBody(endpoint: OpenAIEndpoint, job: JobRecord) {
  const result = job.result;
  const text = result?.text ?? "";
  const usage = { prompt_tokens: result?.prompt_tokens ?? job.prompt_tokens, completion_tokens: result?.completion_tokens ?? 0, total_tokens: (result?.prompt_tokens ?? job.prompt_tokens) + (result?.completion_tokens ?? 0) };
  const created = epochSeconds(new Date(job.finished_at ?? job.created_at));
  const finish_reason = result?.finish_reason ?? "stop";
  if (endpoint === "/v1/chat/completions") {
    return {
      id: `chatcmpl-${derivedHex("completion", job.job_id)}`,
      object: "chat.completion",
      created,
      model: job.model,
      choices: [{ index: 0, message: { role: "assistant", content: text, refusal: null }, logprobs: null, finish_reason }],
      usage,
      system_fingerprint: null,
    };
  }
  return {
    id: `cmpl-${derivedHex("completion", job.job_id)}`,
    object: "text_completion",
    created,
    model: job.model,
    choices: [{ index: 0, text, logprobs: null, finish_reason }],
    usage,
  };
}
