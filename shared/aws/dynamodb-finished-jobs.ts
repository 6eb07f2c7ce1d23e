import { QueryCommand } from "@aws-sdk/lib-dynamodb";
import { RetryableError } from "../core/errors.ts";
import type { FinishedJob } from "../core/metrics.ts";
import type { FinishedJobIndex } from "../ports.ts";
import { jobItem } from "./dynamodb-job-store.ts";
import { DynamoDbTable, sdk } from "./dynamodb-table.ts";

/** The jobs table's sparse index of finished jobs (infra/tables.yml): only a finished job has finished_at. */
export const FINISHED_INDEX = "route-finished-index";

/** What the index projects (infra/tables.yml, Projection.NonKeyAttributes): all GET /v1/metrics reads. */
const finishedItem = jobItem.pick({ job_id: true, status: true, created_at: true, started_at: true, finished_at: true, breakdown: true, error: true, lane: true, component: true });

/**
 * Recently finished jobs of a route, newest first, from route-finished-index (model, finished_at):
 * one Query per page of the window, never a scan, stopping at `limit`.
 */
export class DynamoDbFinishedJobs extends DynamoDbTable implements FinishedJobIndex {
  async finishedSince(route: string, since: Date, limit: number): Promise<{ readonly jobs: readonly FinishedJob[]; readonly truncated: boolean }> {
    const jobs: FinishedJob[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const out = await sdk(`finished jobs of route ${route}`, () =>
        this.#query(
          new QueryCommand({
            TableName: this.tableName,
            IndexName: FINISHED_INDEX,
            KeyConditionExpression: "#model = :route AND #finished >= :since",
            ExpressionAttributeNames: { "#model": "model", "#finished": "finished_at" },
            ExpressionAttributeValues: { ":route": route, ":since": since.toISOString() },
            ScanIndexForward: false,
            Limit: limit - jobs.length,
            ExclusiveStartKey: start,
          }),
        ),
      );
      for (const item of out.Items ?? []) jobs.push(this.decode(finishedItem, item, `finished job ${String(item.job_id)}`));
      start = out.LastEvaluatedKey;
    } while (start && jobs.length < limit);
    return { jobs, truncated: start !== undefined };
  }

  /**
   * A table without the index (one an embedded stack kept in .data/ from before it: dynalite
   * cannot add an index; or one whose index AWS is still building) is refused as unavailable,
   * naming the index, rather than as a bug.
   */
  async #query(command: QueryCommand) {
    try {
      return await this.client.send(command);
    } catch (error) {
      const e = error as { name?: string; message?: string };
      if (e.name === "ValidationException" && /specified index/i.test(e.message ?? "")) {
        throw new RetryableError("unavailable", `table ${this.tableName} has no index ${FINISHED_INDEX} yet (an embedded stack's .data/ from before it keeps its old table: remove .data/ to recreate it)`, error);
      }
      throw error;
    }
  }
}
