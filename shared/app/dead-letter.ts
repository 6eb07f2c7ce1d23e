import { isTerminal, jobMessageSchema } from "../core/jobs.ts";
import type { Clock, JobStore, UsageMeter } from "../ports.ts";
import type { Logger } from "./logger.ts";
import { notifyJob, type NotifyDeps } from "./notify.ts";
import { finalizeIfDone, type BatchControlDeps } from "./batch-progress.ts";
import { batchCounts } from "./queries.ts";
import { giveBackSlot } from "./quotas.ts";

export type DeadLetterDeps = NotifyDeps & BatchControlDeps & { readonly jobs: JobStore; readonly usage: UsageMeter; readonly clock: Clock; readonly logger: Logger };

/**
 * The end of the line for a message SQS gave up on: its job becomes FAILED with the reason and
 * its subscribers are told. A message that is not ours is logged and let go: the DLQ is where
 * it was meant to end, and nothing else can be done with it.
 */
export async function handleDeadLetter(deps: DeadLetterDeps, body: string, receiveCount: number): Promise<void> {
  let parsed;
  try {
    parsed = jobMessageSchema.safeParse(JSON.parse(body));
  } catch {
    parsed = undefined;
  }
  if (!parsed?.success) {
    deps.logger.error("dead letter that is not a batchline job message", { body: body.slice(0, 512) });
    return;
  }
  const jobId = parsed.data.job_id;
  const failed = await deps.jobs.endUnfinished(
    jobId,
    { status: "FAILED", error: { code: "retries_exhausted", message: `gave up after ${receiveCount} delivery attempts; the model endpoint kept failing or timing out` } },
    deps.clock.now(),
  );
  const job = failed ?? (await deps.jobs.get(jobId));
  // Found ended by another: its slot is given back again, a no-op unless its ender died before it did.
  if (job && isTerminal(job.status)) await Promise.all([failed ? undefined : giveBackSlot(deps.usage, job), notifyJob(deps, job)]);
  // The last job of an OpenAI batch may end here: its batch then goes on to finalize.
  if (failed?.batch_id !== undefined) {
    const batch = await deps.batches.get(failed.batch_id);
    if (batch?.kind === "openai") await finalizeIfDone(deps, batch, await batchCounts(deps, batch));
  }
}
