import { setTimeout as delay } from "node:timers/promises";
import WebSocket from "ws";
import type { Api, BatchObject } from "./client.ts";
import type { Counts, Progress } from "./progress.ts";
import type { Settings } from "./settings.ts";

const TERMINAL = new Set(["completed", "failed", "expired", "cancelled"]);
export const isTerminalBatch = (status: string) => TERMINAL.has(status);

/** How often the batch itself is read while it runs: its status moves past in_progress only there. */
const POLL_MS = 2_000;

/**
 * Follows a batch until it ends: its `batch.progress` events over a WebSocket (opened with a
 * one-time ticket, so the key stays out of the URL) and the batch, read every 2 s for its status
 * and counts, drive the progress bar. Without a WebSocket the reads alone carry on.
 */
export async function watchBatch(api: Api, settings: Settings, batchId: string, progress: Progress): Promise<BatchObject> {
  const socket = await openSocket(api, settings).catch(() => undefined);
  // Reading the batch again at once when its last job has ended: it is finalizing then.
  let ended = Promise.withResolvers<void>();
  socket?.on("message", (data) => {
    const event = JSON.parse(String(data)) as { type: string; batch_id?: string; request_counts?: Counts };
    if (event.type !== "batch.progress" || event.batch_id !== batchId || !event.request_counts) return;
    progress.update(event.request_counts);
    if (event.request_counts.queued + event.request_counts.running === 0) ended.resolve();
  });
  socket?.send(JSON.stringify({ action: "subscribe", batch_id: batchId }));
  try {
    for (;;) {
      const batch = await api.json<BatchObject>("GET", `/v1/batches/${batchId}`);
      // The batch's own counts too: batchers report progress as their invocations end, which on a
      // long drain is seldom.
      if (batch.request_counts) progress.update(countsOf(batch.request_counts));
      if (isTerminalBatch(batch.status)) return batch;
      await Promise.race([delay(POLL_MS), ended.promise]);
      ended = Promise.withResolvers<void>();
    }
  } finally {
    socket?.close();
    progress.stop();
  }
}

async function openSocket(api: Api, settings: Settings): Promise<WebSocket> {
  const { ticket } = await api.json<{ ticket: string }>("POST", "/v1/ws-tickets");
  const socket = new WebSocket(`${settings.wsUrl}?ticket=${encodeURIComponent(ticket)}`);
  await new Promise<void>((resolve, reject) => {
    socket.once("open", () => resolve());
    socket.once("error", reject);
  });
  return socket;
}

/** OpenAI's counts as the bar's: what is neither completed nor failed is still to come. */
function countsOf(c: NonNullable<BatchObject["request_counts"]>): Counts {
  return { total: c.total, queued: c.total - c.completed - c.failed, running: 0, succeeded: c.completed, failed: c.failed, cancelled: 0, expired: 0 };
}
