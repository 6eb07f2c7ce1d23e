// `npm run chaos`: thousands of jobs through the embedded stack under every fault at once, every
// job accounted for at the end; `npm run chaos -- --burst`: 20,000 jobs at once, the batcher's
// memory measured. Figures in chaos-results/latest.json; the exit code says whether they pass.
import { parseArgs } from "node:util";
import { defaultChaosOptions, type ChaosOptions } from "./options.ts";
import { runChaos } from "./run.ts";
import type { StoreCrash, StoreName } from "./store-crashes.ts";
import { summary } from "./report.ts";

const { values } = parseArgs({
  options: {
    burst: { type: "boolean", default: false },
    jobs: { type: "string" },
    seed: { type: "string" },
    faults: { type: "boolean" },
    "no-faults": { type: "boolean", default: false },
    "time-scale": { type: "string" },
    "lambda-timeout": { type: "string" },
    "visibility-timeout": { type: "string" },
    "kill-fraction": { type: "string" },
    subscribers: { type: "string" },
    "submit-concurrency": { type: "string" },
    models: { type: "string" },
    "drain-timeout": { type: "string" },
    "crash-dynamodb": { type: "string" },
    "crash-sqs": { type: "string" },
    "no-store-crashes": { type: "boolean", default: false },
    source: { type: "boolean", default: false },
    out: { type: "string" },
    help: { type: "boolean", default: false },
  },
});

if (values.help) {
  process.stdout.write(`npm run chaos -- [--burst] [--jobs N] [--seed N] [--no-faults | --faults] [--time-scale X]
  [--lambda-timeout S] [--visibility-timeout S] [--kill-fraction F] [--subscribers N] [--models a,b]
  [--submit-concurrency N] [--drain-timeout S] [--crash-dynamodb AT,FOR] [--crash-sqs AT,FOR]
  [--no-store-crashes] [--source] [--out DIR]
  --burst        20,000 jobs submitted at once as batch files of 1,000 lines, faults off unless --faults,
                 the batcher's AWS timings (150 s timeout, 900 s visibility), two subscribers following
                 a tenth of the jobs; reports the batcher runners' peak RSS
  --crash-dynamodb AT,FOR, --crash-sqs AT,FOR
                 SIGKILL the DynamoDB (SQS) server AT seconds after faults go on, restart it on its
                 data FOR seconds later (default ${crashText("dynamodb")}, ${crashText("sqs")}); --no-store-crashes: neither
  --source       the batcher runners import the TypeScript source instead of an esbuild bundle
`);
  process.exit(0);
}

const number = (value: string | undefined, name: string): number | undefined => {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got "${value}"`);
  return n;
};

function crashText(store: StoreName): string {
  const crash = defaultChaosOptions.storeCrashes[store];
  return crash ? `${crash.afterWallSeconds},${crash.forWallSeconds}` : "none";
}

function crashOption(value: string | undefined, store: StoreName): StoreCrash | undefined {
  if (value === undefined) return defaultChaosOptions.storeCrashes[store];
  const [after, lasting, ...rest] = value.split(",").map(Number);
  if (after === undefined || lasting === undefined || rest.length > 0 || !(after >= 0) || !(lasting >= 0)) {
    throw new Error(`--crash-${store} must be AT,FOR (seconds, non-negative), got "${value}"`);
  }
  return { afterWallSeconds: after, forWallSeconds: lasting };
}

const burst: Partial<ChaosOptions> = values.burst
  ? {
      mode: "burst",
      jobs: 20_000,
      faults: false,
      batchShare: 1,
      batchLines: 1000,
      submitConcurrency: 4,
      lambdaTimeoutSeconds: 150,
      visibilityTimeoutSeconds: 900,
      subscribers: 2,
      followShare: 0.1,
      drainTimeoutMs: 30 * 60_000,
    }
  : {};
const given = {
  jobs: number(values.jobs, "jobs"),
  seed: number(values.seed, "seed"),
  timeScale: number(values["time-scale"], "time-scale"),
  lambdaTimeoutSeconds: number(values["lambda-timeout"], "lambda-timeout"),
  visibilityTimeoutSeconds: number(values["visibility-timeout"], "visibility-timeout"),
  killFraction: number(values["kill-fraction"], "kill-fraction"),
  subscribers: number(values.subscribers, "subscribers"),
  submitConcurrency: number(values["submit-concurrency"], "submit-concurrency"),
  faults: values["no-faults"] ? false : values.faults,
  handlers: values.source ? ("source" as const) : undefined,
  models: values.models?.split(",").map((m) => m.trim()).filter(Boolean),
  outDir: values.out,
  storeCrashes: values["no-store-crashes"]
    ? {}
    : values["crash-dynamodb"] === undefined && values["crash-sqs"] === undefined
      ? undefined
      : { dynamodb: crashOption(values["crash-dynamodb"], "dynamodb"), sqs: crashOption(values["crash-sqs"], "sqs") },
  drainTimeoutMs: values["drain-timeout"] === undefined ? undefined : (number(values["drain-timeout"], "drain-timeout") ?? 0) * 1000,
};
const options: ChaosOptions = {
  ...defaultChaosOptions,
  ...burst,
  ...Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)),
};
if (options.visibilityTimeoutSeconds < options.lambdaTimeoutSeconds) {
  throw new Error("the visibility timeout must be at least the batcher's timeout (AWS refuses the mapping otherwise)");
}

const log = (line: string) => process.stdout.write(`${line}\n`);
// Ctrl-C: stop where it is and take the stack down (a second one exits at once).
const interrupted = new AbortController();
for (const name of ["SIGINT", "SIGTERM"] as const) {
  process.on(name, () => {
    if (interrupted.signal.aborted) process.exit(130);
    log(`${name}: stopping the run and the stack`);
    interrupted.abort();
  });
}
const results = await runChaos(options, log, interrupted.signal);
log("");
log(summary(results));
if (options.outDir !== undefined) log(`\nwritten to ${options.outDir}/latest.json`);
process.exit(results.passed ? 0 : 1);
