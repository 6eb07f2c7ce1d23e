import { afterEach, describe, expect, it, vi } from "vitest";
import { WebSocketServer } from "ws";
import { submitJob } from "../../tools/cli/jobs.ts";
import type { Api } from "../../tools/cli/client.ts";
import { EXIT } from "../../tools/cli/exit-codes.ts";

/** A WebSocket server that answers a submit frame with these events, in this order. */
async function serverSending(events: readonly object[]): Promise<{ url: string; close: () => Promise<void> }> {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((resolve) => server.once("listening", () => resolve()));
  server.on("connection", (socket) => socket.once("message", () => events.forEach((e) => socket.send(JSON.stringify(e)))));
  const { port } = server.address() as { port: number };
  return { url: `ws://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

const job = (status: string, version: number) => ({ type: `job.${status.toLowerCase()}`, job: { job_id: "job_1", status, version } });
const token = (version: number, index: number) => ({ type: "job.token", job_id: "job_1", version, attempt: 1, index, text: `t${index}`, tokens: index + 1 });

afterEach(() => vi.restoreAllMocks());

describe("batchline submit --prompt, waiting", () => {
  it("prints a job's events in version order: one that comes after a later one, or again, is left out", async () => {
    // Prepare: the first claim's job.running (2) comes after the second claim's (4); a token twice
    const sent = [job("QUEUED", 1), job("RUNNING", 4), job("RUNNING", 2), token(4, 0), token(4, 0), token(2, 5), token(4, 1), job("SUCCEEDED", 5)];
    const server = await serverSending(sent);
    const printed: string[] = [];
    vi.spyOn(process.stdout, "write").mockImplementation((chunk) => printed.push(String(chunk)) > 0);

    // Act
    const code = await submitJob({} as Api, { apiUrl: "http://unused", wsUrl: server.url, apiKey: "bl_test" }, { model: "llama-2-7b", prompt: "Hi", maxTokens: 4, stream: true, wait: true }).finally(server.close);

    // Assess
    expect(code).toBe(EXIT.ok);
    expect(printed.map((line) => JSON.parse(line) as object)).toEqual([sent[0], sent[1], sent[3], sent[6], sent[7]]);
  });
});
