import { readFile } from "node:fs/promises";
import WebSocket from "ws";
import { JobEventOrder } from "#shared/core/event-order";
import type { Api } from "./client.ts";
import { CliError, EXIT, exitCodeOfJob, type ExitCode } from "./exit-codes.ts";
import type { Settings } from "./settings.ts";

type Event = { readonly type: string; readonly [key: string]: unknown };
const FINAL = new Set(["job.succeeded", "job.failed", "job.cancelled", "job.expired"]);

/**
 * Sends `frame` on a WebSocket and prints every event as a JSON line until `done` says the wait is
 * over. A job event whose version is not above the last one applied is stale or repeated, and
 * left out (README, "Ordered events").
 */
function printUntil(settings: Settings, frame: object, done: (event: Event) => boolean): Promise<Event> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${settings.wsUrl}?token=${encodeURIComponent(settings.apiKey)}`);
    const order = new JobEventOrder();
    socket.on("open", () => socket.send(JSON.stringify(frame)));
    socket.on("message", (data) => {
      const event = JSON.parse(String(data)) as Event;
      if (!order.accept(event)) return;
      process.stdout.write(`${JSON.stringify(event)}\n`);
      if (event.type === "error") {
        socket.close();
        reject(new CliError(`the stack refused: ${JSON.stringify(event.error)}`, EXIT.refused));
      } else if (done(event)) {
        socket.close();
        resolve(event);
      }
    });
    socket.on("error", (error) => reject(new CliError(`cannot reach ${settings.wsUrl}: ${error.message}`, EXIT.unreachable)));
  });
}

export type JobOptions = { readonly model: string; readonly prompt: string; readonly maxTokens: number; readonly stream: boolean; readonly wait: boolean };

/**
 * `batchline submit --prompt`: one job. Waiting, it is submitted over the WebSocket, so it is
 * subscribed to before it is queued: none of its events (its first streamed tokens included) can
 * come before the subscription.
 */
export async function submitJob(api: Api, settings: Settings, options: JobOptions): Promise<ExitCode> {
  const job = { model: options.model, prompt: options.prompt, max_tokens: options.maxTokens, ...(options.stream && { stream: true }) };
  if (!options.wait) {
    const { job_id } = await api.json<{ job_id: string }>("POST", "/v1/jobs", job);
    process.stdout.write(`${JSON.stringify({ job_id })}\n`);
    return EXIT.ok;
  }
  const final = await printUntil(settings, { action: "submit", request_id: "cli", job }, (e) => FINAL.has(e.type));
  return exitCodeOfJob((final.job as { status: string }).status) ?? EXIT.ok;
}

export async function getJob(api: Api, jobId: string): Promise<ExitCode> {
  process.stdout.write(`${JSON.stringify(await api.json("GET", `/v1/jobs/${jobId}`), null, 2)}\n`);
  return EXIT.ok;
}

export async function cancelJob(api: Api, jobId: string): Promise<ExitCode> {
  process.stdout.write(`${JSON.stringify(await api.json("DELETE", `/v1/jobs/${jobId}`))}\n`);
  return EXIT.ok;
}

/** `batchline batch FILE.jsonl`: batchline's own JSON-lines batch form, its progress events printed until every job ended. */
export async function submitJsonLines(api: Api, settings: Settings, path: string, wait: boolean): Promise<ExitCode> {
  const accepted = await api.json<{ batch_id: string }>("POST", "/v1/batches", undefined, await readFile(path, "utf8"));
  process.stdout.write(`${JSON.stringify(accepted)}\n`);
  if (!wait) return EXIT.ok;
  const last = await printUntil(settings, { action: "subscribe", batch_id: accepted.batch_id }, (e) => {
    const counts = e.request_counts as Record<string, number> | undefined;
    return e.type === "batch.progress" && counts !== undefined && counts.queued === 0 && counts.running === 0;
  });
  const counts = last.request_counts as Record<string, number>;
  return (counts.failed ?? 0) + (counts.expired ?? 0) > 0 ? EXIT.someFailed : (counts.cancelled ?? 0) > 0 ? EXIT.cancelled : EXIT.ok;
}
