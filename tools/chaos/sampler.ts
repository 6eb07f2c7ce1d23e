import { type DynamoDBDocumentClient, ScanCommand, type ScanCommandOutput } from "@aws-sdk/lib-dynamodb";
import { StatusTracker } from "./writes.ts";

/**
 * The sampler waits at least this many times as long as its last scan took before the next one:
 * dynalite runs in this process beside fauxqs, the emulator and the proxy, which every function
 * call goes through, and scans of thousands of jobs every 3 s would take a sizeable share of it.
 */
const PAUSE_PER_SCAN_TIME = 10;
/** Scans failing in a row past this many are not a store crash the run waits out but a broken run. */
const MAX_FAILED_SCANS_IN_A_ROW = 5;

/** Samples every job's status straight from dynalite, following each for moves backwards. */
export class StateSampler {
  readonly tracker = new StatusTracker("dynamodb samples");
  scans = 0;
  scanMs = 0;
  /** Scans that failed (dynalite killed by a store crash); the states of the last good one stood in. */
  failedScans = 0;
  #failedInARow = 0;
  #lastStates = new Map<string, string>();
  #lastScanMs = 0;
  readonly #ddb: DynamoDBDocumentClient;
  readonly #table: string;

  constructor(ddb: DynamoDBDocumentClient, table: string) {
    this.#ddb = ddb;
    this.#table = table;
  }

  /** How long to wait before the next sample: at least `everyMs`, longer when scans are slow. */
  pauseAfterScan(everyMs: number): number {
    return Math.max(everyMs, PAUSE_PER_SCAN_TIME * this.#lastScanMs);
  }

  /** Every job's status now; while dynalite is down (a store crash), the last states read. */
  async sample(): Promise<Map<string, string>> {
    const started = performance.now();
    let items: { job_id: string; status: string }[];
    try {
      items = await scanAll<{ job_id: string; status: string }>(this.#ddb, this.#table, "job_id, #s");
    } catch (error) {
      this.failedScans++;
      if (++this.#failedInARow > MAX_FAILED_SCANS_IN_A_ROW) throw error;
      return new Map(this.#lastStates);
    }
    this.#failedInARow = 0;
    this.#lastScanMs = performance.now() - started;
    this.scans++;
    this.scanMs += this.#lastScanMs;
    const states = new Map<string, string>();
    for (const { job_id, status } of items) {
      states.set(job_id, status);
      this.tracker.observe(job_id, status);
    }
    this.#lastStates = states;
    return states;
  }
}

export async function scanAll<T>(ddb: DynamoDBDocumentClient, table: string, projection?: string): Promise<T[]> {
  const items: T[] = [];
  let start: Record<string, unknown> | undefined;
  do {
    const out: ScanCommandOutput = await ddb.send(
      new ScanCommand({
        TableName: table,
        ExclusiveStartKey: start,
        ...(projection !== undefined && { ProjectionExpression: projection, ExpressionAttributeNames: { "#s": "status" } }),
      }),
    );
    items.push(...((out.Items ?? []) as T[]));
    start = out.LastEvaluatedKey;
  } while (start !== undefined);
  return items;
}
