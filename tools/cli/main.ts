#!/usr/bin/env node
// The batchline command line: batch files and jobs against a running stack, through its public
// API only. README, "The command-line tool"; exit statuses in exit-codes.ts.
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { basename, dirname, join } from "node:path";
import { Command, CommanderError, InvalidArgumentError } from "commander";
import * as batches from "./batches.ts";
import { Api } from "./client.ts";
import { CliError, EXIT, type ExitCode } from "./exit-codes.ts";
import * as jobs from "./jobs.ts";
import { configPath, resolveSettings, type Settings } from "./settings.ts";
import { exportTrace, tuneRoute, type TraceSource } from "./tune.ts";
import { calibrate } from "./calibrate.ts";
import { DEFAULT_GRID } from "#shared/core/profile-fit";

type Global = { readonly json: boolean; readonly profile?: string };

function context(command: Command): { api: Api; settings: Settings; output: batches.Output } {
  const global = command.optsWithGlobals<Global>();
  const path = configPath(process.env, homedir());
  let text: string | undefined;
  try {
    text = readFileSync(path, "utf8");
  } catch {
    text = undefined;
  }
  const settings = resolveSettings(process.env, { path, text }, global.profile);
  return { api: new Api(settings), settings, output: { json: global.json, terminal: process.stderr.isTTY === true } };
}

const positiveInteger = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("must be a whole number of at least 1");
  return n;
};

const nonNegativeInteger = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError("must be a whole number of at least 0");
  return n;
};

const percentileName = (value: string) => {
  if (value !== "p95" && value !== "p99") throw new InvalidArgumentError('must be "p95" or "p99"');
  return value;
};

const keyValue = (value: string, previous: Record<string, string> = {}) => {
  const at = value.indexOf("=");
  if (at < 1) throw new InvalidArgumentError(`"${value}" is not key=value`);
  return { ...previous, [value.slice(0, at)]: value.slice(at + 1) };
};

const positiveIntegers = (value: string) => value.split(",").map((part) => positiveInteger(part.trim()));

/** The results file of an input file unless --out says otherwise: beside it, `<name>.results.jsonl`. */
const resultsPathOf = (input: string) => join(dirname(input), `${basename(input).replace(/\.jsonl?$/i, "")}.results.jsonl`);

function program(run: (action: Promise<ExitCode>) => void): Command {
  const cli = new Command("batchline")
    .description("Batch inference on batchline: submit batch files and jobs, follow them, fetch their results.")
    .option("--json", "machine-readable output: JSON on stdout, progress as JSON lines on stderr", false)
    .option("--profile <name>", "the profile of the profile file to use (BATCHLINE_PROFILE)")
    .showHelpAfterError()
    .exitOverride();

  cli
    .command("submit")
    .description("submit a batch file (OpenAI batch lines) and write its results; or one job with --prompt")
    .argument("[file]", "JSON lines: {custom_id, method, url, body}")
    .option("--endpoint <path>", "the batch's endpoint: /v1/chat/completions or /v1/completions", "/v1/chat/completions")
    .option("--out <file>", "where the results go (default: <file>.results.jsonl beside the input)")
    .option("--metadata <key=value>", "a metadata pair of the batch (repeatable)", keyValue, {})
    .option("--no-wait", "create the batch (or job) and exit")
    .option("--prompt <text>", "submit one job with this prompt instead of a file")
    .option("--model <route>", "the job's model (with --prompt)", "llama-2-7b")
    .option("--max-tokens <n>", "the job's max_tokens (with --prompt)", positiveInteger, 64)
    .option("--stream", "print the job's text as it is generated (with --prompt)", false)
    .action((file: string | undefined, options, command: Command) => {
      const { api, settings, output } = context(command);
      if (options.prompt !== undefined) {
        run(jobs.submitJob(api, settings, { model: options.model, prompt: options.prompt, maxTokens: options.maxTokens, stream: options.stream, wait: options.wait }));
        return;
      }
      if (file === undefined) throw new CliError("submit needs a batch file, or --prompt for one job", EXIT.usage);
      const out = options.out ?? resultsPathOf(file);
      run(batches.submitFile(api, settings, file, { endpoint: options.endpoint, out, wait: options.wait, metadata: options.metadata }, output));
    });

  cli
    .command("status")
    .description("a batch's status and counts")
    .argument("<batch_id>")
    .action((id: string, _options, command: Command) => {
      const { api, settings, output } = context(command);
      run(batches.status(api, settings, id, false, output));
    });

  cli
    .command("watch")
    .description("follow a batch until it ends; the exit status says how it ended")
    .argument("<batch_id>")
    .action((id: string, _options, command: Command) => {
      const { api, settings, output } = context(command);
      run(batches.status(api, settings, id, true, output));
    });

  cli
    .command("results")
    .description("write a finished batch's output and error lines as JSON lines")
    .argument("<batch_id>")
    .option("--out <file>", "where they go", undefined)
    .action((id: string, options: { out?: string }, command: Command) => {
      const { api, output } = context(command);
      run(batches.results(api, id, options.out ?? `${id}.results.jsonl`, output));
    });

  cli
    .command("cancel")
    .description("cancel a batch (batch_...) or a job (job_...)")
    .argument("<id>")
    .action((id: string, _options, command: Command) => {
      const { api, output } = context(command);
      run(id.startsWith("job_") ? jobs.cancelJob(api, id) : batches.cancel(api, id, output));
    });

  cli
    .command("jobs")
    .description("the jobs of a batch, one JSON line each: custom_id, job_id, status")
    .argument("<batch_id>")
    .action((id: string, _options, command: Command) => run(batches.jobs(context(command).api, id)));

  cli
    .command("get")
    .description("a job, as GET /v1/jobs/{id} answers it")
    .argument("<job_id>")
    .action((id: string, _options, command: Command) => run(jobs.getJob(context(command).api, id)));

  cli
    .command("batch")
    .description("submit a batch file in batchline's own JSON-lines form ({custom_id, body}) and print its progress")
    .argument("<file>")
    .option("--no-wait", "submit and exit")
    .action((file: string, options: { wait: boolean }, command: Command) => {
      const { api, settings } = context(command);
      run(jobs.submitJsonLines(api, settings, file, options.wait));
    });

  cli
    .command("tune")
    .description("simulate the route on a trace and recommend the settings that serve the most per dollar within a latency objective")
    .option("--model <route>", "the route to tune", "llama-2-7b")
    .option("--objective <percentile>", "the latency percentile held to the target: p95 or p99", percentileName, "p95")
    .requiredOption("--target-ms <ms>", "the objective's end-to-end latency, ms", positiveInteger)
    .option("--trace <file>", "a trace file (batchline trace export); default: the route's jobs of the last --minutes")
    .option("--minutes <n>", "the stack's recent jobs to replay, minutes (1-60)", positiveInteger, 5)
    .option("--rpm <n>", "a synthetic Poisson trace at this many requests a minute instead", positiveInteger)
    .option("--duration-s <n>", "the synthetic trace's length, s", positiveInteger, 300)
    .option("--prompt-tokens <n>", "the synthetic trace's prompt tokens", positiveInteger, 512)
    .option("--max-tokens <n>", "the synthetic trace's max new tokens", positiveInteger, 512)
    .option("--seed <n>", "the synthetic trace's seed", nonNegativeInteger, 1)
    .option("--max-copies <n>", "the most copies to try (default: the component's autoscaling max_copies)", positiveInteger)
    .option("--routes <file>", "the routes file the stack runs (BATCHLINE_ROUTES_FILE)", process.env.BATCHLINE_ROUTES_FILE ?? "infra/routes.yml")
    .option("--apply", "write the recommended settings through PUT /v1/routes/{model}/settings", false)
    .action((options, command: Command) => {
      const { api, output } = context(command);
      if (options.trace !== undefined && options.rpm !== undefined) throw new CliError("give --trace or --rpm, not both", EXIT.usage);
      const trace: TraceSource =
        options.rpm !== undefined
          ? { kind: "synthetic", rpm: options.rpm, durationS: options.durationS, promptTokens: options.promptTokens, maxTokens: options.maxTokens, seed: options.seed }
          : options.trace !== undefined
            ? { kind: "file", path: options.trace }
            : { kind: "recent", minutes: options.minutes };
      run(
        tuneRoute(api, {
          model: options.model, routesFile: options.routes, trace, objective: { percentile: options.objective, targetMs: options.targetMs },
          maxCopies: options.maxCopies, apply: options.apply, json: output.json,
        }),
      );
    });

  cli
    .command("trace")
    .description("traces for the tuning simulator")
    .command("export")
    .description("write a route's jobs of the last minutes as a trace (JSON) for batchline tune --trace")
    .option("--model <route>", "the route", "llama-2-7b")
    .option("--minutes <n>", "how far back, minutes (1-60)", positiveInteger, 5)
    .option("--out <file>", "where it goes (default: stdout)")
    .action((options: { model: string; minutes: number; out?: string }, command: Command) => run(exportTrace(context(command).api, options.model, options.minutes, options.out)));

  cli
    .command("calibrate")
    .description("fit a component's latency profile from its own endpoint and write a profile file routes.yml can name")
    .requiredOption("--component <name>", "the component in the routes file (its engine, format, limits and current profile)")
    .requiredOption("--out <file>", "the profile file to write (JSON)")
    .option("--prefix <prefix>", "the stack's resource prefix (<service>-<stage>): the endpoint and component are called <prefix>-<name>")
    .option("--endpoint <name>", "the EndpointName as deployed (default: the routes file's, after --prefix)")
    .option("--inference-component <name>", "the InferenceComponentName as deployed (default: --component, after --prefix)")
    .option("--region <region>", "the endpoint's AWS region (default: the SDK's, AWS_REGION)")
    .option("--routes <file>", "the routes file (BATCHLINE_ROUTES_FILE)", process.env.BATCHLINE_ROUTES_FILE ?? "infra/routes.yml")
    .option("--batch-sizes <list>", "prompts sent at once, comma-separated", positiveIntegers, [...DEFAULT_GRID.batchSizes])
    .option("--prompt-tokens <list>", "prompt lengths, comma-separated", positiveIntegers, [...DEFAULT_GRID.promptTokens])
    .option("--new-tokens <list>", "output lengths of the decode bursts, at least two (bursts of 1 for the prefill are added)", positiveIntegers, [...DEFAULT_GRID.newTokens])
    .option("--repeats <n>", "times round the grid", positiveInteger, DEFAULT_GRID.repeats)
    .option("--name <name>", "the profile's name (default: <component>-calibrated)")
    .option("--dtype <type>", "the weights' type, for the provenance (default: the current profile's)")
    .option("--yes", "send without asking", false)
    .action((options) => {
      const grid = { batchSizes: options.batchSizes, promptTokens: options.promptTokens, newTokens: options.newTokens, repeats: options.repeats };
      run(calibrate({ routesFile: options.routes, component: options.component, prefix: options.prefix, endpoint: options.endpoint, inferenceComponent: options.inferenceComponent, region: options.region, grid, name: options.name, dtype: options.dtype, out: options.out, yes: options.yes }));
    });

  return cli;
}

function fail(error: unknown): never {
  if (error instanceof CliError) {
    process.stderr.write(`batchline: ${error.message}\n`);
    process.exit(error.exitCode);
  }
  if (error instanceof CommanderError) {
    // Help and --version are answers, not errors; commander has printed what was wrong.
    process.exit(error.exitCode === 0 ? EXIT.ok : EXIT.usage);
  }
  process.stderr.write(`batchline: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(EXIT.refused);
}

const run = (action: Promise<ExitCode>) => {
  action.then((code) => process.exit(code), fail);
};

try {
  program(run).parse(process.argv);
} catch (error) {
  fail(error);
}
