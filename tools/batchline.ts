// The batchline command line: submit jobs and batch files to a running stack and wait for their
// results over the WebSocket. Talks to the stack only through its public endpoints.
//
//   npm run batchline -- submit --model llama-2-7b --prompt "Hello" --max-tokens 64 [--stream] [--no-wait]
//   npm run batchline -- get <job_id>
//   npm run batchline -- batch requests.jsonl [--no-wait]
//
// BATCHLINE_API_KEY (required), BATCHLINE_API_URL (http://127.0.0.1:3000),
// BATCHLINE_WS_URL (ws://127.0.0.1:3001).
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import WebSocket from "ws";

const apiUrl = process.env.BATCHLINE_API_URL ?? `http://127.0.0.1:${process.env.BATCHLINE_HTTP_PORT ?? "3000"}`;
const wsUrl = process.env.BATCHLINE_WS_URL ?? `ws://127.0.0.1:${process.env.BATCHLINE_WS_PORT ?? "3001"}`;
const apiKey = process.env.BATCHLINE_API_KEY;

async function api(method: string, path: string, body?: string): Promise<unknown> {
  const response = await fetch(`${apiUrl}${path}`, { method, headers: { authorization: `Bearer ${apiKey}` }, body });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${text}`);
  return text.startsWith("{") ? JSON.parse(text) : text;
}

/** Sends `frame` on a WebSocket and prints its events until `done` says the wait is over. */
function waitFor(frame: object, done: (event: { type: string; [k: string]: unknown }) => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${wsUrl}?token=${encodeURIComponent(apiKey ?? "")}`);
    socket.on("open", () => socket.send(JSON.stringify(frame)));
    socket.on("message", (data) => {
      const event = JSON.parse(String(data)) as { type: string };
      console.log(JSON.stringify(event));
      if (event.type === "error" || done(event)) {
        socket.close();
        if (event.type === "error") reject(new Error("the stack answered with an error"));
        else resolve();
      }
    });
    socket.on("error", reject);
  });
}

const finalTypes = new Set(["job.succeeded", "job.failed", "job.cancelled", "job.expired"]);

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      model: { type: "string", default: "llama-2-7b" },
      prompt: { type: "string" },
      "max-tokens": { type: "string", default: "64" },
      "no-wait": { type: "boolean", default: false },
      stream: { type: "boolean", default: false },
    },
  });
  if (!apiKey) throw new Error("set BATCHLINE_API_KEY (npm start prints the development key)");
  const [command, argument] = positionals;
  if (command === "submit") {
    if (!values.prompt) throw new Error("submit needs --prompt");
    const job = { model: values.model, prompt: values.prompt, max_tokens: Number(values["max-tokens"]), ...(values.stream && { stream: true }) };
    if (values["no-wait"]) {
      const { job_id } = (await api("POST", "/v1/jobs", JSON.stringify(job))) as { job_id: string };
      console.log(JSON.stringify({ job_id }));
    } else {
      // Submitted over the socket, the job is subscribed to before it is queued: none of its
      // events (its first streamed tokens included) can come before the subscription.
      await waitFor({ action: "submit", request_id: "cli", job }, (e) => finalTypes.has(e.type));
    }
  } else if (command === "get" && argument) {
    console.log(JSON.stringify(await api("GET", `/v1/jobs/${argument}`), null, 2));
  } else if (command === "batch" && argument) {
    const accepted = (await api("POST", "/v1/batches", readFileSync(argument, "utf8"))) as { batch_id: string };
    console.log(JSON.stringify(accepted));
    if (!values["no-wait"]) {
      await waitFor({ action: "subscribe", batch_id: accepted.batch_id }, (e) => {
        const counts = e.request_counts as Record<string, number> | undefined;
        return e.type === "batch.progress" && counts !== undefined && counts.queued === 0 && counts.running === 0;
      });
    }
  } else {
    throw new Error("usage: batchline submit --prompt TEXT [--model M] [--max-tokens N] [--stream] [--no-wait] | get JOB_ID | batch FILE.jsonl [--no-wait]");
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
