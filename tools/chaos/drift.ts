import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { DynamoDbUsageMeter } from "#shared/aws/dynamodb-usage";
import { countStatuses, endedCounts, type BatchRecord, type RequestCounts } from "#shared/core/batches";
import { isTerminal, type JobRecord } from "#shared/core/jobs";
import { holdingsOf, slotOf, tokensCharged } from "#shared/core/quotas";
import { scanAll } from "./sampler.ts";

/**
 * Every counter the pipeline keeps, against what the jobs say once the run is over. A drift is
 * the counter minus what it should hold: 0 everywhere when no retry, lost answer or kill moved one.
 */
export type CounterDrift = {
  /** The tenant's slots held, against its jobs not ended (a batch's chunk of 100 lines holds its slots until its last line ends). */
  readonly jobs_in_flight: { readonly counter: number; readonly expected: number; readonly drift: number };
  /**
   * Each token minute still stored (they expire two minutes on), against the tokens of the jobs
   * it names; `charges_without_job`: charges whose job was never stored (nor refunded).
   */
  readonly tokens_per_minute: { readonly minutes: number; readonly counter: number; readonly expected: number; readonly drift: number; readonly charges_without_job: number };
  /** Every batch's request_counts from its tally, against its jobs' states: the lines counted differently. */
  readonly batches: { readonly batches: number; readonly untallied: number; readonly drifted: number; readonly drift: number; readonly examples: readonly unknown[] };
  /** The sum of every drift's size: the verdict's figure. */
  readonly total: number;
};

export async function measureDrift(ddb: DynamoDBDocumentClient, prefix: string, jobs: readonly JobRecord[], tenant: string): Promise<CounterDrift> {
  const usageTable = `${prefix}-usage`;
  const meter = new DynamoDbUsageMeter({ client: ddb, tableName: usageTable });
  const ofTenant = jobs.filter((j) => j.tenant === tenant);
  const byId = new Map(ofTenant.map((j) => [j.job_id, j]));

  const counter = await meter.jobsInFlight(tenant);
  const chunkSizes = new Map<string, number>();
  for (const h of holdingsOf(ofTenant.map(slotOf).map((s) => ({ ...s, ended: undefined })))) chunkSizes.set(h.id, h.chunk?.lines.length ?? 1);
  const held = holdingsOf(ofTenant.filter((j) => !isTerminal(j.status)).map(slotOf).map((s) => ({ ...s, ended: undefined })));
  const expected = held.reduce((sum, h) => sum + (chunkSizes.get(h.id) ?? 0), 0);

  const minutes = (await scanAll<{ key: string; used?: number; charges?: Set<string> }>(ddb, usageTable)).filter((i) => i.key.startsWith(`tokens#${tenant}#`));
  const chargedIds = minutes.flatMap((m) => [...(m.charges ?? [])]);
  const tokensCounted = minutes.reduce((sum, m) => sum + Number(m.used ?? 0), 0);
  const tokensOfJobs = chargedIds.reduce((sum, id) => {
    const job = byId.get(id);
    return sum + (job ? tokensCharged(job.prompt_tokens, job.request.max_tokens) : 0);
  }, 0);

  const batches = (await scanAll<BatchRecord>(ddb, `${prefix}-batches`)).filter((b) => b.tenant === tenant);
  const jobsByBatch = Map.groupBy(ofTenant.filter((j) => j.batch_id !== undefined), (j) => j.batch_id ?? "");
  let untallied = 0;
  const drifted: { batch_id: string; tally: unknown; jobs: unknown }[] = [];
  let batchDrift = 0;
  for (const batch of batches) {
    const fromJobs = asTallied(countStatuses(batch.total, (jobsByBatch.get(batch.batch_id) ?? []).map((j) => j.status)));
    const tally = await meter.countsOf(batch);
    if (!tally) {
      untallied++;
      continue;
    }
    const off = (Object.keys(fromJobs) as (keyof typeof fromJobs)[]).reduce((sum, k) => sum + Math.abs(tally[k] - fromJobs[k]), 0);
    if (off > 0) drifted.push({ batch_id: batch.batch_id, tally, jobs: fromJobs });
    batchDrift += off;
  }

  const jobsDrift = counter - expected;
  const tokensDrift = tokensCounted - tokensOfJobs;
  return {
    jobs_in_flight: { counter, expected, drift: jobsDrift },
    tokens_per_minute: { minutes: minutes.length, counter: tokensCounted, expected: tokensOfJobs, drift: tokensDrift, charges_without_job: chargedIds.filter((id) => !byId.has(id)).length },
    batches: { batches: batches.length, untallied, drifted: drifted.length, drift: batchDrift, examples: drifted.slice(0, 3) },
    total: Math.abs(jobsDrift) + Math.abs(tokensDrift) + batchDrift,
  };
}

/** As a tally counts: a line of the batch with no job stored (a submission that failed part way) is queued, never nowhere. */
function asTallied(counts: RequestCounts): RequestCounts {
  const ended = endedCounts.reduce((sum, s) => sum + counts[s], 0);
  return { ...counts, queued: Math.max(0, counts.total - ended - counts.running) };
}
