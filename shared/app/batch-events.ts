import type { BatchRecord } from "../core/batches.ts";
import { derivedHex, isTerminalStatus } from "../core/openai-batches.ts";
import type { WebhookEvent, WebhookOutbox } from "../ports.ts";

/**
 * Puts the webhook event of a batch's terminal status on the outbox. Its id is derived from the
 * batch and the status: a step run again after its transition sends the same event, which a
 * receiver dedupes on `webhook-id` (at least once).
 */
export async function announceEnd(deps: { readonly webhooks: WebhookOutbox }, batch: BatchRecord): Promise<void> {
  const status = batch.status;
  if (batch.kind !== "openai" || status === undefined || !isTerminalStatus(status)) return;
  const event: WebhookEvent = {
    id: `evt_${derivedHex("event", batch.batch_id, status)}`,
    tenant: batch.tenant,
    type: `batch.${status}`,
    created_at: batch[`${status}_at`] ?? 0,
    data: { id: batch.batch_id },
  };
  await deps.webhooks.enqueue([event]);
}
