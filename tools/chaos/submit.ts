import { setTimeout as delay } from "node:timers/promises";
import type { Subscriber } from "./subscribers.ts";

/**
 * Submits the chaos run's jobs as users do, over the three ways in: batch files
 * (`POST /v1/batches`, job ids read back from the results), single jobs over HTTP
 * (`POST /v1/jobs`) and over the WebSocket (`submit`). Single jobs carry an idempotency key, so a
 * retry after a 5xx (DynamoDB faults reach the API too) never makes a second job.
 */

export type Target = { readonly http: string; readonly apiKey: string };

export type SubmitPlan = {
  readonly jobs: number;
  readonly models: readonly string[];
  readonly maxTokens: readonly [number, number];
  /** Share of jobs sent in batch files; the rest are single jobs. */
  readonly batchShare: number;
  /** Lines per batch file. */
  readonly batchLines: number;
  /** Share of the single jobs submitted over the WebSocket rather than HTTP. */
  readonly wsShare: number;
  /** Share of single jobs given a deadline 10 to 30 s ahead (some then expire). */
  readonly deadlineShare: number;
  /** Share of accepted jobs cancelled soon after. */
  readonly cancelShare: number;
  /** Submissions in flight at once. */
  readonly concurrency: number;
  readonly seed: number;
  readonly random: () => number;
};

export type Accepted = { readonly jobIds: readonly string[]; readonly via: "batch" | "http" | "ws" };

export type SubmitStats = {
  accepted: number;
  batches: number;
  httpJobs: number;
  wsJobs: number;
  /** Answers that were not a success (5xx, 429, network), each followed by a retry. */
  retriedRequests: number;
  /** Those answers by route and status. */
  failedAnswers: Record<string, number>;
  /** Batch files refused (a new batch is sent; the refused one's stored jobs were failed with a reason). */
  refusedBatches: number;
  /** Final answers that refused a submission (batch file or single job), by route, status and error code. */
  refusedAnswers: Record<string, number>;
  gaveUp: number;
  /** Success answers that did not say what the API promises (kept, a few, to be reported). */
  oddAnswers: string[];
  /** Requests by route (WebSocket submits included, answered or not) and the time they took, to see where submitting goes. */
  requestTimes: Record<string, { requests: number; total_ms: number }>;
  cancelRequests: number;
  cancelled: number;
};

const MAX_TRIES = 12;

export async function submitAll(
  plan: SubmitPlan,
  target: Target,
  wsSubmitters: readonly Subscriber[],
  onAccepted: (accepted: Accepted) => void,
): Promise<SubmitStats> {
  const stats: SubmitStats = { accepted: 0, batches: 0, httpJobs: 0, wsJobs: 0, retriedRequests: 0, failedAnswers: {}, refusedBatches: 0, refusedAnswers: {}, gaveUp: 0, oddAnswers: [], requestTimes: {}, cancelRequests: 0, cancelled: 0 };
  const { random } = plan;
  const batchJobs = Math.round(plan.jobs * plan.batchShare);
  const units: (() => Promise<void>)[] = [];
  let next = 0;
  const job = () => jobBody(plan, next++);
  for (let left = batchJobs; left > 0; left -= plan.batchLines) {
    const lines = Array.from({ length: Math.min(plan.batchLines, left) }, () => {
      const { idempotency_key: _key, ...body } = job();
      return body;
    });
    units.push(() => submitBatch(lines));
  }
  while (next < plan.jobs) {
    const body = job();
    // At least 20 s ahead: a submit takes seconds on a loaded machine (3 s on average in the small
    // run on 2 cores, more when retried: a store crash's outage and restart add 10 s or more), and
    // a deadline already past when the API reads it is refused (400), as it should be, which would
    // leave the run a job short.
    const deadlineInMs = plan.deadlineShare > 0 && random() < plan.deadlineShare ? 20_000 + random() * 20_000 : undefined;
    const viaWs = wsSubmitters.length > 0 && random() < plan.wsShare;
    units.push(() => {
      if (deadlineInMs !== undefined) body.deadline = new Date(Date.now() + deadlineInMs).toISOString();
      return viaWs ? submitWs(body) : submitHttp(body);
    });
  }
  // Interleave the three ways in so the queue sees all of them all along.
  shuffle(units, random);

  const cancels: Promise<void>[] = [];
  const accepted = (jobIds: readonly string[], via: Accepted["via"]) => {
    stats.accepted += jobIds.length;
    onAccepted({ jobIds, via });
    for (const id of jobIds) if (plan.cancelShare > 0 && random() < plan.cancelShare) cancels.push(cancelLater(id, random() * 3000));
  };

  const timed = async <T>(route: string, call: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    try {
      return await call();
    } finally {
      const times = (stats.requestTimes[route] ??= { requests: 0, total_ms: 0 });
      times.requests++;
      times.total_ms += Math.round(performance.now() - started);
    }
  };

  async function request(method: string, path: string, body?: string): Promise<{ status: number; text: string; headers: Headers }> {
    return timed(`${method} ${routeOf(path)}`, () => requestUntilAnswered(method, path, body));
  }

  async function requestUntilAnswered(method: string, path: string, body?: string): Promise<{ status: number; text: string; headers: Headers }> {
    for (let attempt = 1; ; attempt++) {
      let answer: { status: number; text: string; headers: Headers } | undefined;
      try {
        const response = await fetch(`${target.http}${path}`, {
          method,
          headers: { authorization: `Bearer ${target.apiKey}`, "content-type": "application/json" },
          body,
        });
        answer = { status: response.status, text: await response.text(), headers: response.headers };
      } catch {
        answer = undefined;
      }
      if (answer && answer.status < 500 && answer.status !== 429) return answer;
      const key = `${method} ${routeOf(path)} ${answer?.status ?? "network error"}`;
      stats.failedAnswers[key] = (stats.failedAnswers[key] ?? 0) + 1;
      if (attempt >= MAX_TRIES) return answer ?? { status: 0, text: "network error", headers: new Headers() };
      stats.retriedRequests++;
      await delay(Math.min(5000, 100 * 2 ** attempt) * (0.5 + random()));
    }
  }

  /** Counts a final answer that refused a submission, by what it said. */
  function refused(route: string, answer: { status: number; text: string }): void {
    const code = (parseJson(answer.text) as { error?: { code?: unknown } } | undefined)?.error?.code;
    const key = `${route} ${answer.status} ${typeof code === "string" ? code : answer.text.slice(0, 60)}`;
    stats.refusedAnswers[key] = (stats.refusedAnswers[key] ?? 0) + 1;
  }

  async function submitBatch(lines: readonly Record<string, unknown>[]): Promise<void> {
    const text = lines.map((body, i) => JSON.stringify({ custom_id: `line-${i}`, body })).join("\n");
    for (let attempt = 1; attempt <= MAX_TRIES; attempt++) {
      const answer = await request("POST", "/v1/batches", text);
      if (answer.status !== 202) {
        // Refused after DynamoDB failed mid-way: its stored jobs were failed; send the file again.
        stats.refusedBatches++;
        refused("POST /v1/batches", answer);
        continue;
      }
      const batchId = (parseJson(answer.text) as { batch_id?: unknown } | undefined)?.batch_id;
      if (typeof batchId !== "string") {
        stats.oddAnswers.push(`POST /v1/batches 202: ${answer.text.slice(0, 300)}`);
        continue;
      }
      stats.batches++;
      accepted(await batchJobIds(batchId), "batch");
      return;
    }
    stats.gaveUp += lines.length;
  }

  async function batchJobIds(batchId: string): Promise<string[]> {
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const answer = await request("GET", `/v1/batches/${batchId}/results?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
      if (answer.status !== 200) throw new Error(`GET results of ${batchId}: ${answer.status} ${answer.text.slice(0, 300)}`);
      for (const line of answer.text.split("\n")) {
        if (!line.trim()) continue;
        const jobId = (parseJson(line) as { job_id?: unknown } | undefined)?.job_id;
        if (typeof jobId === "string") ids.push(jobId);
        else stats.oddAnswers.push(`GET /v1/batches/{id}/results 200 line: ${line.slice(0, 300)}`);
      }
      cursor = answer.headers.get("x-next-cursor");
    } while (cursor);
    return ids;
  }

  async function submitHttp(body: Record<string, unknown>): Promise<void> {
    const answer = await request("POST", "/v1/jobs", JSON.stringify(body));
    if (answer.status !== 202 && answer.status !== 200) {
      stats.gaveUp++;
      refused("POST /v1/jobs", answer);
      return;
    }
    const jobId = (parseJson(answer.text) as { job_id?: unknown } | undefined)?.job_id;
    if (typeof jobId !== "string") {
      // Accepted without saying which job: the API's fault, kept to be reported.
      stats.gaveUp++;
      stats.oddAnswers.push(`POST /v1/jobs ${answer.status}: ${answer.text.slice(0, 300)}`);
      return;
    }
    stats.httpJobs++;
    accepted([jobId], "http");
  }

  async function submitWs(body: Record<string, unknown>): Promise<void> {
    const submitter = wsSubmitters[Math.floor(random() * wsSubmitters.length)] as Subscriber;
    const jobId = await timed("WebSocket submit", () => submitter.submit(body));
    if (typeof jobId !== "string") {
      stats.gaveUp++;
      return;
    }
    stats.wsJobs++;
    accepted([jobId], "ws");
  }

  async function cancelLater(jobId: string, afterMs: number): Promise<void> {
    await delay(afterMs);
    stats.cancelRequests++;
    const answer = await request("DELETE", `/v1/jobs/${jobId}`);
    if (answer.status === 200 && (JSON.parse(answer.text) as { status: string }).status === "CANCELLED") stats.cancelled++;
  }

  let index = 0;
  const worker = async () => {
    while (index < units.length) {
      const unit = units[index++];
      if (unit) await unit();
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, plan.concurrency) }, worker));
  await Promise.all(cancels);
  return stats;
}

const WORDS = ["queue", "batch", "window", "token", "prompt", "result", "retry", "fence", "shard", "lease", "drain", "burst"];

function jobBody(plan: SubmitPlan, index: number): Record<string, unknown> {
  const { random } = plan;
  const [low, high] = plan.maxTokens;
  const words = Array.from({ length: 3 + Math.floor(random() * 12) }, () => WORDS[Math.floor(random() * WORDS.length)]).join(" ");
  return {
    model: plan.models[index % plan.models.length],
    prompt: `Chaos job ${index}: ${words}.`,
    max_tokens: low + Math.floor(random() * (high - low + 1)),
    idempotency_key: `chaos-${plan.seed}-${index}`,
    metadata: { chaos_index: String(index) },
  };
}

/** A request's path as its route: ids and the query left out. */
function routeOf(path: string): string {
  return (path.split("?")[0] ?? "").replace(/(job|batch)_[0-9a-f]+/g, "{id}");
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function shuffle<T>(items: T[], random: () => number): void {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
}
