import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DynamoDBClient, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateApiKey, hashApiKey } from "#shared/core/api-keys";
import type { MetricsSnapshot, RouteMetrics } from "#shared/core/metrics";
import { pollUntil } from "../helpers/local-aws.ts";
import { startStackProcess, stackPorts, type StackProcess } from "../helpers/stack-process.ts";

// GET /v1/metrics on the embedded stack, started as `npm start` starts it: a few jobs run, and the
// numbers (queue depth while they wait or run, tokens/s, latency percentiles split into queue wait
// and inference, copies and GPU busy) reflect them, as JSON and as Prometheus text; a member key
// is refused.
const stage = `e2em${Math.random().toString(36).slice(2, 8)}`;
const dataDir = mkdtempSync(join(tmpdir(), "batchline-e2e-metrics-"));
const adminKey = generateApiKey(); // the development key: tenant dev, admin
const memberKey = generateApiKey();
const ROUTE = "llama-2-7b";
const JOBS = 12;
const MAX_TOKENS = 256;
let stack: StackProcess;

async function api(method: string, path: string, options: { key?: string; body?: unknown; accept?: string } = {}) {
  const headers: Record<string, string> = { authorization: `Bearer ${options.key ?? adminKey}`, "content-type": "application/json" };
  if (options.accept) headers.accept = options.accept;
  const response = await fetch(`${stack.http}${path}`, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  return { status: response.status, contentType: response.headers.get("content-type") ?? "", text: await response.text() };
}

const metrics = async (): Promise<MetricsSnapshot> => JSON.parse((await api("GET", "/v1/metrics")).text) as MetricsSnapshot;
const routeOf = (snapshot: MetricsSnapshot): RouteMetrics => snapshot.routes.find((r) => r.route === ROUTE)!;

const until = <T>(probe: () => Promise<T | undefined>, what: string, timeoutMs: number) => pollUntil(probe, what, timeoutMs, 200);

beforeAll(async () => {
  stack = await startStackProcess({ stage, dataDir, apiKey: adminKey }, await stackPorts());
  const ddb = new DynamoDBClient({ endpoint: stack.dynamodb, region: "us-east-1", credentials: { accessKeyId: "local", secretAccessKey: "local" } });
  await ddb.send(new PutItemCommand({
    TableName: `batchline-${stage}-api-keys`,
    Item: { key_hash: { S: hashApiKey(memberKey) }, tenant: { S: "globex" }, name: { S: "member" }, created_at: { S: new Date().toISOString() } },
  }));
  ddb.destroy();
}, 180_000);

afterAll(async () => {
  await stack?.interrupt();
  rmSync(dataDir, { recursive: true, force: true });
});

describe("GET /v1/metrics on the embedded stack", () => {
  it("is refused to a member key, naming the admin key it needs", async () => {
    const answer = await api("GET", "/v1/metrics", { key: memberKey });
    expect(answer.status).toBe(403);
    expect(JSON.parse(answer.text)).toMatchObject({ error: { code: "forbidden", message: expect.stringMatching(/admin API key/) } });
  });

  it("shows the queue while jobs wait or run, then their tokens, latencies, copies and cost, as JSON and Prometheus text", async () => {
    // Prepare: an idle stack's numbers.
    const idle = await metrics();
    expect(idle).toMatchObject({ source: "embedded", window_seconds: 300 });
    expect(routeOf(idle).jobs.finished).toBe(0);
    expect(routeOf(idle).latency_ms.end_to_end).toBeNull();

    // Act: a burst of lone jobs, read from the moment they are submitted until the queue shows
    // them waiting or running.
    const held = (lane: RouteMetrics["lanes"][number]) => lane.depth.visible + lane.depth.in_flight;
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const snapshot = await metrics();
        if (routeOf(snapshot).lanes.some((l) => held(l) > 0)) return snapshot;
      }
      return undefined;
    })();
    const ids: string[] = [];
    for (let i = 0; i < JOBS; i++) {
      const answer = await api("POST", "/v1/jobs", { body: { model: ROUTE, prompt: `Tell a story, part ${i}.`, max_tokens: MAX_TOKENS } });
      expect(answer.status).toBe(202);
      ids.push((JSON.parse(answer.text) as { job_id: string }).job_id);
    }
    for (const id of ids) {
      await until(async () => ((JSON.parse((await api("GET", `/v1/jobs/${id}`)).text) as { status: string }).status === "SUCCEEDED" ? true : undefined), `job ${id}`, 120_000);
    }
    const done = await until(async () => {
      const snapshot = await metrics();
      return routeOf(snapshot).jobs.succeeded >= JOBS ? snapshot : undefined;
    }, "the finished jobs in the index", 30_000);
    watching = false;
    const busy = await watcher;
    const text = await api("GET", "/v1/metrics", { accept: "text/plain" });

    // Assess: the queue held them (lone jobs wait in the interactive lane), its oldest message aged from its send.
    expect(busy, "a metrics read while the jobs waited or ran").toBeDefined();
    const busyLanes = routeOf(busy!).lanes;
    expect(busyLanes.map((l) => l.lane)).toEqual(["interactive", "batch"]);
    expect(held(busyLanes[0]!)).toBeGreaterThan(0);
    expect(busyLanes[0]?.oldest_message_age_seconds).toBeGreaterThanOrEqual(0);
    // The finished jobs' numbers: every token generated, latencies split into queue wait and inference.
    const route = routeOf(done);
    expect(route.jobs).toMatchObject({ finished: JOBS, succeeded: JOBS, truncated: false });
    expect(route.generated_tokens).toBe(JOBS * MAX_TOKENS);
    expect(route.generated_tokens_per_second).toBeCloseTo((JOBS * MAX_TOKENS) / 300, 6);
    const { end_to_end, queue_wait, inference } = route.latency_ms;
    expect(inference?.p50).toBeGreaterThan(0);
    expect(queue_wait?.p95).toBeGreaterThanOrEqual(0);
    expect(end_to_end?.p95).toBeGreaterThanOrEqual(inference?.p50 ?? Number.POSITIVE_INFINITY);
    expect(end_to_end!.p50).toBeLessThanOrEqual(end_to_end!.p95);
    expect(end_to_end!.p95).toBeLessThanOrEqual(end_to_end!.p99);
    expect(route.errors).toEqual({ total: 0, rate: 0, by_kind: {} });
    expect(route.cost.per_million_tokens).toBeGreaterThan(0);
    expect(route.lanes.every((l) => l.dead_letter.depth === 0)).toBe(true);
    // Its component: one copy serving, busy for part of the window, having generated tokens.
    const component = done.components.find((c) => c.component === "llama-2-7b-ic")!;
    expect(component.copies).toMatchObject({ serving: 1, warming: 0, draining: 0 });
    expect(component.gpu_busy_fraction).toBeGreaterThan(0);
    expect(component.per_copy[0]).toMatchObject({ state: "serving" });
    expect(component.per_copy[0]?.generated_tokens_per_second).toBeGreaterThan(0);
    // The same numbers as Prometheus text.
    expect(text.status).toBe(200);
    expect(text.contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(text.text).toContain("# TYPE batchline_jobs_finished gauge");
    expect(text.text).toMatch(new RegExp(`^batchline_jobs_finished\\{route="${ROUTE}"\\} ${JOBS}$`, "m"));
    expect(text.text).toMatch(new RegExp(`^batchline_job_latency_milliseconds\\{route="${ROUTE}",phase="inference",quantile="0.95"\\} [0-9.e+]+$`, "m"));
    expect(text.text).toMatch(/^batchline_copies\{component="llama-2-7b-ic",state="serving"\} 1$/m);
  }, 240_000);
});
