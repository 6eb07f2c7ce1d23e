import { JobSubscriberCache } from "./job-subscribers.ts";
import { notifyJob } from "./notify.ts";
import { reportBatchProgress } from "./batch-progress.ts";
import { effectiveRouteSettings } from "../core/route-settings.ts";
import { renotifyFinished } from "./batcher/job-endings.ts";
import { parseJobMessage, toPackItem } from "./batcher/messages.ts";
import { RouteRun } from "./batcher/route-run.ts";
import type { BatcherDeps, DeliveredMessage, DeliveryOptions, DeliveryReport, Pending } from "./batcher/types.ts";

export type { BatcherDeps, DeliveredMessage, DeliveryOptions, DeliveryReport } from "./batcher/types.ts";

/** A delivered job message before its route is known: a Pending but for its pack item. */
type Received = Omit<Pending, "item">;

/**
 * Runs a delivery (the messages the event source mapping invoked the batcher with) on the GPUs
 * and keeps them fed: jobs start as soon as a component has room (rolling-batch engines) or as a
 * static GPU batch when holding would not pay (dynamic engines); while the copies have room and
 * time allows, the batcher tops the delivery up from the route's queue itself. Each job is claimed (fenced by attempt), run, written once and notified; each
 * message is deleted or released only once its job's state is durable.
 */
export async function processDelivery(shared: BatcherDeps, delivered: readonly DeliveredMessage[], options: DeliveryOptions): Promise<DeliveryReport> {
  // A job's running and final events share one look-up of its subscribers within the invocation.
  const deps: BatcherDeps = { ...shared, jobSubscribers: new JobSubscriberCache() };
  const retry: string[] = [];
  const byRoute = new Map<string, Received[]>();
  for (const m of delivered) {
    const message = parseJobMessage(m.body);
    if (!message) {
      deps.logger.error("not a batchline job message; leaving it for the DLQ", { messageId: m.messageId });
      retry.push(m.messageId);
      continue;
    }
    const list = byRoute.get(message.model) ?? [];
    list.push({ source: { kind: "delivered", ...m, lane: m.lane ?? "batch" }, message, receivedMs: deps.clock.now().getTime() });
    byRoute.set(message.model, list);
  }
  const reports = await Promise.all(
    [...byRoute].map(async ([model, received]) => {
      const route = deps.catalog.routes.get(model);
      if (!route) return failUnroutable(deps, model, received);
      // Sized with the route's chat template: the text its engine will be sent.
      const pending = received.map((r): Pending => ({ ...r, item: toPackItem(r.message, route.chat_template) }));
      const settings = effectiveRouteSettings(route, await deps.routeSettings.get(model));
      return new RouteRun(deps, route, settings, options).run(pending);
    }),
  );
  return {
    retry: [...retry, ...reports.flatMap((r) => r.retry)],
    gpuBatchSizes: reports.flatMap((r) => r.gpuBatchSizes),
    pulled: reports.reduce((sum, r) => sum + r.pulled, 0),
    pulledByLane: {
      interactive: reports.reduce((sum, r) => sum + r.pulledByLane.interactive, 0),
      batch: reports.reduce((sum, r) => sum + r.pulledByLane.batch, 0),
    },
  };
}

/** Jobs of a model no longer in the catalog fail with the reason; their messages are done. */
async function failUnroutable(deps: BatcherDeps, model: string, pending: readonly Received[]): Promise<DeliveryReport> {
  const touched = new Set<string>();
  await Promise.all(
    pending.map(async (p) => {
      const ending = { status: "FAILED", error: { code: "unknown_model", message: `model ${model} is no longer served` } } as const;
      const job = await deps.jobs.endUnfinished(p.message.job_id, ending, deps.clock.now());
      if (job) {
        if (job.batch_id !== undefined) touched.add(job.batch_id);
        await notifyJob(deps, job);
      } else {
        await renotifyFinished(deps, p.message.job_id);
      }
    }),
  );
  await Promise.all([...touched].map((id) => reportBatchProgress(deps, id)));
  return { retry: [], gpuBatchSizes: [], pulled: 0, pulledByLane: { interactive: 0, batch: 0 } };
}
