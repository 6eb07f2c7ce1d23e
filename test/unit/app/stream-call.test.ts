import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";
import { SUBSCRIBERS_REREAD_MS } from "#shared/app/batcher/stream-call";
import { submitBatch, submitJob } from "#shared/app/submit";
import { RetryableError } from "#shared/core/errors";
import { batchTopic, jobTopic, type ServerEvent, type TokenEvent } from "#shared/core/events";
import type { JobRecord } from "#shared/core/jobs";
import { buildRouteCatalog } from "#shared/core/routes";
import { jsonBytes, TOKEN_FRAME_INTERVAL_MS, WEBSOCKET_FRAME_BYTES } from "#shared/core/token-coalescer";
import { runBatcher } from "../../helpers/batcher.ts";
import { connectionOf, memoryDeps, subscribeToJob } from "../../helpers/fakes.ts";

/** The batcher's streaming path (shared/app/batcher/stream-call.ts) on memory fakes and FakeTime: every instant is virtual and exact. */
type Deps = ReturnType<typeof memoryDeps>;
type Post = { readonly atMs: number; readonly connectionId: string; readonly event: ServerEvent };

async function streamedJob(deps: Deps, maxTokens = 20, extra: object = {}): Promise<JobRecord> {
  const { job } = await submitJob(deps, "acme", { model: "llama-2-7b", prompt: "Tell me a story.", max_tokens: maxTokens, stream: true, ...extra });
  await subscribeToJob(deps, job.job_id, "conn-1");
  return job;
}

/** Every post that went through, with its virtual time. */
function recordPosts(deps: Deps): Post[] {
  const posts: Post[] = [];
  const post = deps.notifier.post.bind(deps.notifier);
  deps.notifier.post = async (connectionId, event) => {
    await post(connectionId, event);
    posts.push({ atMs: deps.time.nowMs, connectionId, event });
  };
  return posts;
}

const tokensOf = (posts: readonly Post[], connectionId = "conn-1") =>
  posts.filter((p) => p.connectionId === connectionId && p.event.type === "job.token") as (Post & { event: TokenEvent })[];
const typesOf = (posts: readonly Post[], connectionId = "conn-1") => posts.filter((p) => p.connectionId === connectionId).map((p) => p.event.type);
const textOf = (job: JobRecord | undefined) => job?.result?.text;

describe("a streamed job in the batcher", () => {
  it("posts its text in order as it comes: the first token at once, then a frame per 50 ms, the rest before the final event", async () => {
    // Prepare: 20 tokens, the first 30 ms after the call starts, then one every 10 ms
    const deps = memoryDeps();
    const job = await streamedJob(deps);
    const posts = recordPosts(deps);

    // Act
    await runBatcher(deps);

    // Assess
    const stored = deps.jobs.jobs.get(job.job_id);
    expect(stored).toMatchObject({ status: "SUCCEEDED", result: { completion_tokens: 20 } });
    expect(typesOf(posts)).toEqual(["job.running", ...tokensOf(posts).map(() => "job.token"), "job.succeeded"]);
    const startMs = posts[0]?.atMs ?? Number.NaN;
    const tokens = tokensOf(posts);
    // Tokens come at 30, 40, ... 220 ms: frames at 30 (1 token), 80 (4: a token of a frame's instant
    // goes in the next), 130 and 180 (5 each), and at the end (5).
    expect(tokens.map((p) => p.atMs - startMs)).toEqual([30, 80, 130, 180, 220]);
    // Each carries the version of the claim that runs it: the job.running's, below the final event's.
    const versionOf = (type: string) => posts.flatMap((p) => (p.event.type === type && "job" in p.event ? [p.event.job.version] : []))[0];
    expect(versionOf("job.running")).toBe(2);
    expect(versionOf("job.succeeded")).toBe(3);
    expect(tokens.map((p) => p.event)).toEqual(
      [1, 5, 10, 15, 20].map((count, index) => ({ type: "job.token", job_id: job.job_id, version: 2, attempt: 1, index, text: expect.any(String), tokens: count })),
    );
    expect(tokens.map((p) => p.event.text).join("")).toBe(textOf(stored));
    expect(deps.invoker.streamCalls).toHaveLength(1);
    expect(deps.invoker.calls).toEqual([]);
  });

  it("never posts two frames less than the interval apart while the model generates", async () => {
    // Prepare: a token every 3 ms for 200 tokens
    const deps = memoryDeps();
    deps.invoker.streamPacing = { firstTokenMs: 5, tokenMs: 3 };
    const job = await streamedJob(deps, 200);
    const posts = recordPosts(deps);

    // Act
    await runBatcher(deps);

    // Assess
    const times = tokensOf(posts).map((p) => p.atMs);
    const gaps = times.slice(1, -1).map((at, i) => at - (times[i] as number));
    expect(gaps.every((gap) => gap >= TOKEN_FRAME_INTERVAL_MS)).toBe(true);
    expect(times.length).toBeLessThanOrEqual(Math.ceil((5 + 3 * 199) / TOKEN_FRAME_INTERVAL_MS) + 2);
    expect(tokensOf(posts).map((p) => p.event.text).join("")).toBe(textOf(deps.jobs.jobs.get(job.job_id)));
  });

  it("leaves a job that did not ask to stream on today's path: one invoke, no token events", async () => {
    // Prepare
    const deps = memoryDeps();
    const { job } = await submitJob(deps, "acme", { model: "llama-2-7b", prompt: "Hi", max_tokens: 20 });
    await subscribeToJob(deps, job.job_id, "conn-1");
    const posts = recordPosts(deps);

    // Act
    await runBatcher(deps);

    // Assess
    expect(typesOf(posts)).toEqual(["job.running", "job.succeeded"]);
    expect(deps.invoker.calls).toHaveLength(1);
    expect(deps.invoker.streamCalls).toEqual([]);
    // Its queue message is the very one it was before streaming existed.
    expect(JSON.stringify(deps.queue.sent[0]?.message)).not.toContain("stream");
  });

  it("retries a stream that breaks as any failed call; the retry streams from the start, saying so, and the result is written once", async () => {
    // Prepare: the first stream breaks after 7 tokens
    const deps = memoryDeps();
    deps.invoker.streamBreak = (call) => (call === 0 ? { afterTokens: 7, error: new RetryableError("unavailable", "model stream failed (StreamBroken): broken") } : undefined);
    const job = await streamedJob(deps);
    const posts = recordPosts(deps);

    // Act: the first delivery, then the message back after its backoff
    const first = await runBatcher(deps);
    const afterFirst = posts.length;
    expect(deps.jobs.jobs.get(job.job_id)).toMatchObject({ status: "RUNNING", attempt: 1 });
    deps.queue.visible.push(...deps.queue.delayed.splice(0));
    await runBatcher(deps);

    // Assess
    expect(first.retry).toHaveLength(1);
    expect(deps.queue.released).toEqual([{ messageId: expect.any(String), delaySeconds: expect.any(Number) }]);
    const firstTokens = tokensOf(posts.slice(0, afterFirst)).map((p) => p.event);
    const secondTokens = tokensOf(posts.slice(afterFirst)).map((p) => p.event);
    expect(firstTokens.map((e) => e.attempt)).toEqual(firstTokens.map(() => 1));
    expect(firstTokens.at(-1)?.tokens).toBeLessThan(7);
    expect(secondTokens[0]).toMatchObject({ attempt: 2, index: 0, restarted: true });
    // The retry's claim moved the version on: a client drops the first attempt's tokens that come late.
    expect(secondTokens.every((e) => e.version > (firstTokens[0]?.version ?? Infinity))).toBe(true);
    expect(secondTokens.slice(1).every((e) => e.attempt === 2 && e.restarted === undefined)).toBe(true);
    expect(secondTokens.map((e) => e.text).join("")).toBe(textOf(deps.jobs.jobs.get(job.job_id)));
    expect(deps.jobs.finishes).toEqual([{ jobId: job.job_id, attempt: 2, status: "SUCCEEDED" }]);
    expect(typesOf(posts).filter((t) => t !== "job.token")).toEqual(["job.running", "job.running", "job.succeeded"]);
  });

  it("sends a batch job's text to the job's subscribers only, not to the batch's", async () => {
    // Prepare
    const deps = memoryDeps();
    const file = JSON.stringify({ custom_id: "a", body: { model: "llama-2-7b", prompt: "Hi", max_tokens: 10, stream: true } });
    const { batch } = await submitBatch(deps, "acme", file);
    const [job] = (await deps.jobs.listByBatch(batch.batch_id, { limit: 10 })).items;
    await subscribeToJob(deps, job?.job_id ?? "", "conn-job");
    await deps.subscriptions.subscribe(batchTopic(batch.batch_id), connectionOf("conn-batch"));
    const posts = recordPosts(deps);

    // Act
    await runBatcher(deps);

    // Assess
    expect(tokensOf(posts, "conn-job").length).toBeGreaterThan(0);
    expect(typesOf(posts, "conn-batch")).not.toContain("job.token");
    expect(typesOf(posts, "conn-batch")).not.toContain("job.succeeded");
    expect(typesOf(posts, "conn-batch")).toContain("batch.progress");
  });

  it("stops posting to a connection that is gone, and goes on for the others", async () => {
    // Prepare
    const deps = memoryDeps();
    const job = await streamedJob(deps);
    await subscribeToJob(deps, job.job_id, "conn-2");
    const posts = recordPosts(deps);
    const post = deps.notifier.post.bind(deps.notifier);
    const tried: string[] = [];
    deps.notifier.post = async (connectionId, event) => {
      if (event.type === "job.token") tried.push(connectionId);
      if (connectionId === "conn-2" && event.type === "job.token") deps.notifier.gone.add("conn-2");
      return post(connectionId, event);
    };

    // Act
    await runBatcher(deps);

    // Assess
    expect(tried.filter((c) => c === "conn-2")).toEqual(["conn-2"]);
    expect(tokensOf(posts).map((p) => p.event.text).join("")).toBe(textOf(deps.jobs.jobs.get(job.job_id)));
    expect(await deps.subscriptions.subscribers(jobTopic(job.job_id))).toEqual(["conn-1"]);
  });

  it("reaches a client that subscribes mid-stream within a reread of the subscribers", async () => {
    // Prepare: 3 s of tokens; a second client subscribes after 1.2 s
    const deps = memoryDeps();
    deps.invoker.streamPacing = { firstTokenMs: 30, tokenMs: 100 };
    const job = await streamedJob(deps, 30);
    const posts = recordPosts(deps);
    let subscribedAtMs = Number.NaN;
    const late = (async () => {
      await deps.time.sleep(1_200);
      await subscribeToJob(deps, job.job_id, "conn-late");
      subscribedAtMs = deps.time.nowMs;
    })();

    // Act
    await Promise.all([runBatcher(deps), late]);

    // Assess
    const lateTokens = tokensOf(posts, "conn-late");
    expect(lateTokens[0]?.atMs).toBeLessThanOrEqual(subscribedAtMs + SUBSCRIBERS_REREAD_MS + TOKEN_FRAME_INTERVAL_MS);
    expect(lateTokens[0]?.event.index).toBeGreaterThan(0);
    expect(lateTokens.at(-1)?.event.tokens).toBe(30);
  });

  it("splits a token too long for one WebSocket frame across frames, none over 32 KB", async () => {
    // Prepare: a 100 KB token of characters that JSON escapes
    const deps = memoryDeps();
    const long = '"é\n'.repeat(34_000);
    deps.invoker.behaviour = () => ({ text: `a${long}b`, completion_tokens: 3, finish_reason: "stop" });
    deps.invoker.streamTokens = () => ["a", long, "b"];
    const job = await streamedJob(deps);
    const posts = recordPosts(deps);

    // Act
    await runBatcher(deps);

    // Assess
    const tokens = tokensOf(posts).map((p) => p.event);
    expect(tokens.length).toBeGreaterThan(4);
    expect(Math.max(...tokens.map((e) => jsonBytes(e)))).toBeLessThanOrEqual(WEBSOCKET_FRAME_BYTES);
    expect(tokens.map((e) => e.text).join("")).toBe(textOf(deps.jobs.jobs.get(job.job_id)));
    expect(tokens.at(-1)?.tokens).toBe(3);
  });

  it("runs a streamed job unstreamed on a dynamic-batch component, where a route with other components may send it", async () => {
    // Prepare: submitted to a rolling route, run where its component makes dynamic batches
    const deps = memoryDeps();
    const job = await streamedJob(deps);
    const raw = parseYaml(readFileSync("infra/routes.yml", "utf8"));
    raw.components["llama-2-7b-ic"].engine = "lmi-dynamic";
    const posts = recordPosts(deps);

    // Act
    await runBatcher({ ...deps, catalog: buildRouteCatalog(raw) });

    // Assess
    expect(deps.jobs.jobs.get(job.job_id)?.status).toBe("SUCCEEDED");
    expect(deps.invoker.streamCalls).toEqual([]);
    expect(typesOf(posts)).toEqual(["job.running", "job.succeeded"]);
  });
});
