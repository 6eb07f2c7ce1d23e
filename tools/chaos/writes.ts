import type { DynamoDbExchange } from "#local/dynamodb-fault-proxy";

/**
 * What the DynamoDB fault proxy saw being written to the jobs table: every request that reached
 * dynalite and succeeded there (whatever the caller was told), reduced to the job's status and
 * whether a result was written. Since every function, batcher runners included, talks to
 * DynamoDB through the proxy, this is the true history of each job's record.
 */
export type JobWrite = { readonly jobId: string; readonly status: string | undefined; readonly setsResult: boolean; readonly operation: string };

type AttributeValue = { readonly S?: string; readonly N?: string; readonly M?: Record<string, AttributeValue> };
type UpdateRequest = {
  readonly Key?: Record<string, AttributeValue>;
  readonly UpdateExpression?: string;
  readonly ExpressionAttributeNames?: Record<string, string>;
  readonly ExpressionAttributeValues?: Record<string, AttributeValue>;
};

/** The job writes one successful exchange made on `jobsTable` (none for reads, failures and other tables). */
export function jobWritesOf(exchange: DynamoDbExchange, jobsTable: string): JobWrite[] {
  if (exchange.upstreamStatus !== 200) return [];
  return attemptedJobWritesOf(exchange, jobsTable);
}

/** The job writes an exchange on `jobsTable` asked for, whether or not they happened. */
function attemptedJobWritesOf(exchange: DynamoDbExchange, jobsTable: string): JobWrite[] {
  const { operation } = exchange;
  if (operation === "UpdateItem" && exchange.table === jobsTable) return updateWrite(exchange.request as UpdateRequest);
  if (operation === "PutItem" && exchange.table === jobsTable) {
    const item = (exchange.request as { Item?: Record<string, AttributeValue> }).Item;
    return item ? [itemWrite(item, operation)] : [];
  }
  if (operation === "BatchWriteItem") return batchWrites(exchange, jobsTable);
  return [];
}

function itemWrite(item: Record<string, AttributeValue>, operation: string): JobWrite {
  return { jobId: item.job_id?.S ?? "", status: item.status?.S, setsResult: item.result !== undefined, operation };
}

function batchWrites(exchange: DynamoDbExchange, jobsTable: string): JobWrite[] {
  const requests = (exchange.request as { RequestItems?: Record<string, { PutRequest?: { Item: Record<string, AttributeValue> } }[]> }).RequestItems?.[jobsTable] ?? [];
  const unprocessed = new Set<string>();
  if (exchange.upstreamBody?.includes("UnprocessedItems")) {
    const body = JSON.parse(exchange.upstreamBody) as { UnprocessedItems?: Record<string, { PutRequest?: { Item: Record<string, AttributeValue> } }[]> };
    for (const r of body.UnprocessedItems?.[jobsTable] ?? []) if (r.PutRequest) unprocessed.add(r.PutRequest.Item.job_id?.S ?? "");
  }
  return requests.flatMap((r) => (r.PutRequest && !unprocessed.has(r.PutRequest.Item.job_id?.S ?? "") ? [itemWrite(r.PutRequest.Item, "BatchWriteItem")] : []));
}

function updateWrite(request: UpdateRequest): JobWrite[] {
  const jobId = request.Key?.job_id?.S;
  if (jobId === undefined) return [];
  const assigned = setAssignments(request.UpdateExpression ?? "", request.ExpressionAttributeNames ?? {});
  const statusValue = assigned.get("status");
  const status = statusValue === undefined ? undefined : request.ExpressionAttributeValues?.[statusValue]?.S;
  return [{ jobId, status, setsResult: assigned.has("result"), operation: "UpdateItem" }];
}

/**
 * The attributes a SET clause assigns, to the value placeholder each gets: `SET #s = :v, a = :b
 * ADD n :one` with `#s` → `status` gives {status → ":v", a → ":b"}. Only plain `name = :value`
 * assignments are reported (what the job store writes); functions and arithmetic are skipped.
 */
export function setAssignments(expression: string, names: Readonly<Record<string, string>>): Map<string, string> {
  const assigned = new Map<string, string>();
  const clauses = expression.split(/\b(SET|REMOVE|ADD|DELETE)\b/i);
  for (let i = 1; i < clauses.length; i += 2) {
    if ((clauses[i] ?? "").toUpperCase() !== "SET") continue;
    for (const part of (clauses[i + 1] ?? "").split(",")) {
      const match = /^\s*([#\w.]+)\s*=\s*(:\w+)\s*$/.exec(part);
      if (!match) continue;
      const [, path = "", value = ""] = match;
      assigned.set(path.startsWith("#") ? (names[path] ?? path) : path, value);
    }
  }
  return assigned;
}

const TERMINAL = new Set(["SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"]);
export const isTerminalStatus = (status: string | undefined): boolean => status !== undefined && TERMINAL.has(status);

/** QUEUED 0, RUNNING 1, terminal 2: a job only moves up, and never from one terminal state to another. */
export function statusRank(status: string): number {
  return status === "QUEUED" ? 0 : status === "RUNNING" ? 1 : 2;
}

/** A status that may not follow `previous`: lower in rank, or another terminal state. */
export function isBackwards(previous: string, next: string): boolean {
  if (isTerminalStatus(previous)) return next !== previous;
  return statusRank(next) < statusRank(previous);
}

export type Backwards = { readonly jobId: string; readonly from: string; readonly to: string; readonly source: string };

/** Follows each job's status through a sequence of observations and keeps the moves backwards. */
export class StatusTracker {
  readonly #last = new Map<string, string>();
  readonly backwards: Backwards[] = [];
  readonly #source: string;

  constructor(source: string) {
    this.#source = source;
  }

  observe(jobId: string, status: string): void {
    const previous = this.#last.get(jobId);
    if (previous !== undefined && isBackwards(previous, status)) {
      this.backwards.push({ jobId, from: previous, to: status, source: this.#source });
      // Keep the furthest state seen: one regression is counted once.
      return;
    }
    this.#last.set(jobId, status);
  }

  last(jobId: string): string | undefined {
    return this.#last.get(jobId);
  }
}

/** Per job: the writes that really happened to its record, in the order DynamoDB answered them. */
export class WriteLog {
  readonly #jobsTable: string;
  readonly tracker = new StatusTracker("dynamodb writes");
  /** Successful writes that set a result (SUCCEEDED), per job. */
  readonly resultWrites = new Map<string, number>();
  /** Successful writes that set a terminal status, per job. */
  readonly terminalWrites = new Map<string, number>();
  /**
   * Writes of a result whose request reached dynalite as it was SIGKILLed (a store crash): the
   * proxy saw no answer, yet the write may be on disk. Per job.
   */
  readonly uncertainResultWrites = new Map<string, number>();
  /** Successful claims (status set to RUNNING), per job. */
  readonly claims = new Map<string, number>();
  /** Requests on the jobs table whose answer was replaced by an injected error after they were written. */
  lostAnswers = 0;
  /** Who waits for the next claim of a job. */
  readonly #claimWaiters = new Map<string, Set<() => void>>();

  constructor(jobsTable: string) {
    this.#jobsTable = jobsTable;
  }

  /** Every write asked of each job's record, as `operation status upstream→client (fault)`: to explain a job that went wrong. */
  readonly history = new Map<string, string[]>();

  observe(exchange: DynamoDbExchange): void {
    for (const w of attemptedJobWritesOf(exchange, this.#jobsTable)) {
      const entry = `${new Date(exchange.at).toISOString().slice(11, 23)} ${w.operation} ${w.status ?? "-"}${w.setsResult ? "+result" : ""} ${exchange.upstreamStatus ?? "none"}->${exchange.status}${exchange.fault === "none" ? "" : ` (fault ${exchange.fault} ${exchange.faultKind})`}`;
      const list = this.history.get(w.jobId);
      if (list) list.push(entry);
      else this.history.set(w.jobId, [entry]);
    }
    if (exchange.upstreamError !== undefined && exchange.upstreamError !== "ECONNREFUSED") {
      for (const w of attemptedJobWritesOf(exchange, this.#jobsTable)) if (w.setsResult) bump(this.uncertainResultWrites, w.jobId);
    }
    const writes = jobWritesOf(exchange, this.#jobsTable);
    if (writes.length > 0 && exchange.fault === "after") this.lostAnswers++;
    for (const write of writes) {
      if (write.status === undefined) continue;
      this.tracker.observe(write.jobId, write.status);
      if (write.setsResult && write.status === "SUCCEEDED") bump(this.resultWrites, write.jobId);
      if (isTerminalStatus(write.status)) bump(this.terminalWrites, write.jobId);
      if (write.status === "RUNNING") {
        bump(this.claims, write.jobId);
        for (const wake of [...(this.#claimWaiters.get(write.jobId) ?? [])]) wake();
      }
    }
  }

  /**
   * Resolves at the next claim (a RUNNING write that reached DynamoDB) of any of these jobs; it
   * stops waiting, unresolved, when `signal` aborts.
   */
  nextClaim(jobIds: readonly string[], signal: AbortSignal): Promise<void> {
    const { promise, resolve } = Promise.withResolvers<void>();
    const stop = () => {
      for (const id of jobIds) {
        const waiters = this.#claimWaiters.get(id);
        waiters?.delete(wake);
        if (waiters?.size === 0) this.#claimWaiters.delete(id);
      }
      signal.removeEventListener("abort", stop);
    };
    const wake = () => {
      stop();
      resolve();
    };
    if (signal.aborted) return promise;
    for (const id of jobIds) {
      const waiters = this.#claimWaiters.get(id);
      if (waiters) waiters.add(wake);
      else this.#claimWaiters.set(id, new Set([wake]));
    }
    signal.addEventListener("abort", stop, { once: true });
    return promise;
  }
}

function bump(counts: Map<string, number>, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}
