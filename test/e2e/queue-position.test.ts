import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateApiKey } from "#shared/core/api-keys";
import { startStackProcess, stackPorts, type StackProcess } from "../helpers/stack-process.ts";
import { EventClient, type Event } from "../helpers/ws-client.ts";

// A waiting job's place in line on the embedded stack, started as `npm start` starts it (the
// emulator at real time): POST answers with it, GET shows it, and a real WebSocket client
// subscribed to the job gets job.waiting as the jobs ahead start, then job.running.
const stage = `e2eq${Math.random().toString(36).slice(2, 8)}`;
const dataDir = mkdtempSync(join(tmpdir(), "batchline-e2e-queue-"));
const apiKey = generateApiKey();
let stack: StackProcess;

const JOBS = 30;
type Estimate = { lane: string; position: number; estimated_start_at: string; estimated_finish_at: string };
type WaitingEvent = Event & { job_id: string; queue: Estimate };

async function api(method: string, path: string, body?: unknown) {
  const response = await fetch(`${stack.http}${path}`, { method, headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: response.status, json: (await response.json()) as any };
}

beforeAll(async () => {
  stack = await startStackProcess({ stage, dataDir, apiKey }, await stackPorts());
}, 180_000);

afterAll(async () => {
  await stack?.interrupt();
  rmSync(dataDir, { recursive: true, force: true });
});

describe("a waiting job's place in line on the embedded stack", () => {
  it("is in POST's answer and GET's, and its WebSocket subscriber hears it move before the job runs", async () => {
    // Prepare: two sequences at a time on the one copy, so that 30 jobs make a line.
    expect((await api("PUT", "/v1/routes/llama-2-7b/settings", { max_in_flight_per_copy: 2 })).status).toBe(200);

    // Act: 30 lone jobs in a burst, then a subscriber to the last.
    const answers = [];
    for (let i = 0; i < JOBS; i++) answers.push(await api("POST", "/v1/jobs", { model: "llama-2-7b", prompt: `Count to ten, slowly, the ${i}th time.`, max_tokens: 64 }));
    const last = answers.at(-1)?.json as { job_id: string; status: string; queue?: Estimate };
    const seen = await api("GET", `/v1/jobs/${last.job_id}`);
    const client = await EventClient.connect(stack.ws, apiKey);
    client.send({ action: "subscribe", job_ids: [last.job_id] });
    const events = await client.waitUntil((e) => e.some((x) => x.type === "job.succeeded"), 120_000);
    client.close();

    // Assess: every answer is a queued job with its place; the last stood well back in line.
    expect(answers.every((a) => a.status === 202 && a.json.queue?.lane === "interactive")).toBe(true);
    expect(last.queue?.position).toBeGreaterThanOrEqual(JOBS / 2);
    expect(Date.parse(last.queue?.estimated_finish_at ?? "")).toBeGreaterThan(Date.parse(last.queue?.estimated_start_at ?? ""));
    expect(seen.json).toMatchObject({ job_id: last.job_id, status: "QUEUED", queue: { lane: "interactive" } });
    expect(seen.json.queue.position).toBeLessThanOrEqual(last.queue?.position ?? 0);

    const types = events.map((e) => e.type);
    const waiting = events.filter((e): e is WaitingEvent => e.type === "job.waiting");
    expect(types[0]).toBe("subscribed");
    expect(waiting.length).toBeGreaterThanOrEqual(2);
    expect(types.lastIndexOf("job.waiting")).toBeLessThan(types.indexOf("job.running"));
    const positions = waiting.map((e) => e.queue.position);
    expect(positions).toEqual([...positions].sort((a, b) => b - a));
    expect(positions[0]).toBeGreaterThan(positions.at(-1) ?? 0);
    expect(waiting.every((e) => e.job_id === last.job_id)).toBe(true);
  }, 180_000);
});
