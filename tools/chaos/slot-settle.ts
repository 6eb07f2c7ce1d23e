import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { SUSPECT_MIN_AGE_MS, sweepSlots, type SlotSweepReport } from "#shared/app/slot-sweep";
import { DynamoDbJobStore } from "#shared/aws/dynamodb-job-store";
import { DynamoDbUsageMeter } from "#shared/aws/dynamodb-usage";

/** What the slot sweep gave back once the run was over, and what it wrote about each. */
export type SlotSettling = { readonly sweeps: readonly SlotSweepReport[]; readonly warnings: readonly string[] };

/**
 * The slot sweep (functions/batch-sweep, every tenth minute) as it runs after the run is over: a
 * take or refund that met the store's crash past every try of its submit (a batch file's 40
 * slots) is given back only by it, SUSPECT_MIN_AGE_MS and more on. So it runs twice, its clock
 * that far ahead and twice that (a holding without its job is given back at its second finding),
 * on the stack's own tables. Run once nothing is left in flight: it would give back the slots of
 * a job about to be stored.
 */
export async function settleSlotsLater(ddb: DynamoDBDocumentClient, prefix: string): Promise<SlotSettling> {
  const usage = new DynamoDbUsageMeter({ client: ddb, tableName: `${prefix}-usage` });
  const jobs = new DynamoDbJobStore({ client: ddb, tableName: `${prefix}-jobs` });
  const warnings: string[] = [];
  const say = (message: string, extra?: Record<string, unknown>) => void warnings.push(`${message} ${JSON.stringify(extra ?? {})}`);
  const logger = { debug: () => {}, info: () => {}, warn: say, error: say };
  const sweeps: SlotSweepReport[] = [];
  for (const ahead of [SUSPECT_MIN_AGE_MS, 2 * SUSPECT_MIN_AGE_MS]) {
    sweeps.push(await sweepSlots({ slots: usage, usage, jobs, logger, clock: { now: () => new Date(Date.now() + ahead) } }));
  }
  return { sweeps, warnings };
}
