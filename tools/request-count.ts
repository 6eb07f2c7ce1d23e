import { loadavg } from "node:os";
import { parseArgs } from "node:util";
import { readingDelta, RequestMeter, type MeterReading } from "#local/request-meter";
import { startStack, type Stack } from "#local/stack";
import { serverlessCost } from "./bench/aws-cost.ts";
import { FinalEvents } from "./bench/events.ts";
import { api, submitFile } from "./bench/lanes.ts";

/**
 * Counts what a batch line and a single job ask of AWS on one metered embedded stack, by action:
 * a short run for a branch's before and after (issue 18 item 1), not the bench. A batch file of
 * --lines lines, then --jobs single jobs POSTed at --rate a minute, each subscribed to on one
 * WebSocket as the bench's clients do; each part is metered from its first POST until its jobs
 * ended and the batchers that ran them returned.
 *   node tools/request-count.ts --lines 300 --jobs 200 --rate 400 --model llama-3-1b --max-tokens 64
 */
const { values } = parseArgs({
  options: {
    lines: { type: "string", default: "300" },
    jobs: { type: "string", default: "200" },
    rate: { type: "string", default: "400" },
    model: { type: "string", default: "llama-3-1b" },
    "max-tokens": { type: "string", default: "64" },
  },
});
const lines = Number(values.lines);
const jobs = Number(values.jobs);
const ratePerMinute = Number(values.rate);
const model = values.model;
const maxTokens = Number(values["max-tokens"]);

const meter = new RequestMeter();
const running = new Set<Promise<unknown>>();
const stack = await startStack({
  stage: `count${process.pid}`,
  meter,
  autoscaling: false,
  offlineReadyTimeoutMs: 300_000,
  onInvocation: ({ ended }) => {
    running.add(ended);
    void ended.then(() => running.delete(ended));
  },
});
try {
  const { http, websocket } = stack.endpoints;
  if (!http || !websocket) throw new Error("the stack runs without its HTTP or WebSocket API");
  const target = { http, websocket, apiKey: stack.apiKey, model };
  await warmUp(target);
  if (lines > 0) report(`batch line (${lines} lines, ${maxTokens} tokens each)`, lines, await batchLines(stack, target));
  if (jobs > 0) {
    const { reading, accepted } = await singleJobs(target);
    report(`single job (${accepted} accepted of ${jobs} at ${ratePerMinute}/min, ${maxTokens} tokens each)`, accepted, reading);
  }
} finally {
  await stack.stop();
}

type Target = { readonly http: string; readonly websocket: string; readonly apiKey: string; readonly model: string };

async function warmUp(target: Target): Promise<void> {
  // One job end to end first: the functions' cold starts and the component's first call are not counted.
  await followJobs(target, 1, 0);
  await quiet();
}

async function batchLines(_stack: Stack, target: Target): Promise<MeterReading> {
  const before = meter.read();
  const text = Array.from({ length: lines }, (_, i) => JSON.stringify({ custom_id: `line-${i}`, body: { model, prompt: `Count the requests of line ${i}.`, max_tokens: maxTokens } })).join("\n");
  const id = await submitFile(target, text);
  const deadline = performance.now() + 600_000;
  for (;;) {
    await sleep(1_000);
    const answer = await api(target, "GET", `/v1/batches/${id}`);
    if (answer.status === 200 && (JSON.parse(answer.text) as { status: string }).status === "completed") break;
    if (performance.now() > deadline) throw new Error(`batch ${id} not completed in 600 s`);
  }
  await quiet();
  return readingDelta(meter.read(), before);
}

async function singleJobs(target: Target): Promise<{ reading: MeterReading; accepted: number }> {
  const before = meter.read();
  const accepted = await followJobs(target, jobs, 60_000 / ratePerMinute);
  await quiet();
  return { reading: readingDelta(meter.read(), before), accepted };
}

/**
 * POSTs `count` jobs `gapMs` apart, subscribing to each on one WebSocket, until every accepted
 * job's final event came; a POST the stack refused (a 5xx on a starved machine) is left out.
 * Returns the jobs accepted.
 */
async function followJobs(target: Target, count: number, gapMs: number): Promise<number> {
  let finals = 0;
  let accepted = 0;
  let refused = 0;
  const events = await FinalEvents.connect(target.websocket, target.apiKey, () => void finals++);
  try {
    const posts: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      posts.push(
        (async () => {
          const answer = await api(target, "POST", "/v1/jobs", JSON.stringify({ model, prompt: `Count the requests of job ${i}.`, max_tokens: maxTokens })).catch((error: unknown) => ({ status: 0, text: String(error) }));
          if (answer.status !== 202) {
            refused++;
            process.stderr.write(`POST /v1/jobs refused: ${answer.status} ${answer.text.slice(0, 200)}\n`);
            return;
          }
          accepted++;
          events.subscribe((JSON.parse(answer.text) as { job_id: string }).job_id);
        })(),
      );
      await sleep(gapMs);
    }
    await Promise.all(posts);
    const deadline = performance.now() + 600_000;
    while (finals < accepted) {
      if (performance.now() > deadline) throw new Error(`${accepted - finals} of ${accepted} accepted jobs unanswered after 600 s`);
      await sleep(200);
    }
    if (refused > 0) process.stderr.write(`${refused} of ${count} POSTs refused\n`);
    return accepted;
  } finally {
    events.close();
  }
}

/** Until the batchers that ran the jobs returned (their last writes and deletes). */
async function quiet(): Promise<void> {
  const until = performance.now() + 60_000;
  while (running.size > 0 && performance.now() < until) await sleep(250);
}

function report(what: string, count: number, reading: MeterReading): void {
  const cost = serverlessCost(reading, count, 0);
  const round = (n: number) => Math.round(n * 100) / 100;
  const byAction = Object.entries(cost.by_action_per_job).map(([action, n]) => `${action} ${round(n)}`);
  const byTable = Object.entries(cost.dynamodb_by_table_per_job).map(([table, n]) => `${table} ${round(n)}`);
  process.stdout.write(`${what}: ${round(cost.requests_per_job)} AWS requests each (load average ${loadavg()[0]?.toFixed(1)})\n  by action: ${byAction.join(", ")}\n  DynamoDB by table: ${byTable.join(", ")}\n`);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
