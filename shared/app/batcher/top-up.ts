import type { Lane } from "../../core/lanes.ts";
import type { Route } from "../../core/routes.ts";
import type { JobQueue } from "../../ports.ts";
import type { Logger } from "../logger.ts";
import { parseJobMessage, toPackItem } from "./messages.ts";
import type { Pending } from "./types.ts";

/**
 * Takes up to `max` messages of the route from one lane's queue: the batcher topping up what its
 * delivery brought. A message that is not a job of this route goes back, for the DLQ.
 */
export async function pullFromQueue(
  deps: { readonly queue: JobQueue; readonly logger: Logger },
  route: Route,
  request: { readonly lane: Lane; readonly max: number; readonly waitSeconds: number },
  nowMs: () => number,
): Promise<{ readonly received: number; readonly jobs: readonly Pending[] }> {
  const received = await deps.queue.receive(route.name, request.max, request.waitSeconds, request.lane);
  const jobs: Pending[] = [];
  for (const m of received) {
    const message = parseJobMessage(m.body);
    if (!message || message.model !== route.name) {
      deps.logger.error("not a job message of this route; leaving it for the DLQ", { messageId: m.messageId });
      await deps.queue.release(route.name, m.receiptHandle, 0, m.lane);
      continue;
    }
    jobs.push({ source: { kind: "pulled", ...m, lane: request.lane }, message, item: toPackItem(message, route.chat_template), receivedMs: nowMs() });
  }
  return { received: received.length, jobs };
}
