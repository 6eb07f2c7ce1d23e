import { writeFile } from "node:fs/promises";
import { createInterface } from "node:readline/promises";
import { sageMakerRuntimeClient } from "#shared/aws/clients";
import { SageMakerInvoker } from "#shared/aws/sagemaker-invoker";
import { CalibrationCallError, runCalibration, type CalibrationPrompt } from "#shared/app/calibrate";
import { loadRouteCatalog, sageMakerNames } from "#shared/config";
import { takesMessages } from "#shared/core/codecs/index";
import { decodeStepMs, prefillMs } from "#shared/core/latency-model";
import { profileFileOf } from "#shared/core/profile-file";
import { CalibrationFitError, calibrationPlan, fitProfile, planEstimate, type BurstMeasurement, type CalibrationBurst, type CalibrationGrid, type ProfileFit } from "#shared/core/profile-fit";
import { gpuNames, type GpuName, type LatencyProfile } from "#shared/core/profiles";
import { gpuHourPrice, type Component, type RouteCatalog, type TokenizerName } from "#shared/core/routes";
import { tokenCounter } from "#shared/core/tokens";
import { oneTokenWords } from "#local/sagemaker/generate";
import { CliError, EXIT, type ExitCode } from "./exit-codes.ts";

/**
 * `batchline calibrate`: fits a component's latency profile from its own endpoint
 * (shared/core/profile-fit.ts says how) and writes a profile file that routes.yml can name.
 */

export type CalibrateOptions = {
  readonly routesFile: string;
  /** The component in the routes file: its engine, format, limits, tokenizer and current profile. */
  readonly component: string;
  /** The stack's BATCHLINE_RESOURCE_PREFIX: the endpoint and component as deployed are `<prefix>-<name>` (sageMakerNames). */
  readonly prefix?: string | undefined;
  /** EndpointName and InferenceComponentName as deployed, over the prefix's; default the routes file's names. */
  readonly endpoint?: string | undefined;
  readonly inferenceComponent?: string | undefined;
  readonly region?: string | undefined;
  readonly grid: CalibrationGrid;
  /** The profile's name; default `<component>-calibrated`. */
  readonly name?: string | undefined;
  /** The weights' type, for the provenance; default the current profile's. */
  readonly dtype?: string | undefined;
  readonly out: string;
  readonly yes: boolean;
};

export type CalibrateIo = {
  readonly log?: (line: string) => void;
  /** Asks to go on; default: a yes/no question on the terminal. */
  readonly confirm?: (question: string) => Promise<boolean>;
  readonly today?: () => Date;
};

export async function calibrate(options: CalibrateOptions, io: CalibrateIo = {}): Promise<ExitCode> {
  const log = io.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const { catalog, component, tokenizer } = componentOf(options.routesFile, options.component);
  const { bursts, left } = calibrationPlan(options.grid, component.limits);
  if (bursts.length === 0) throw new CliError(`no burst of the grid fits ${component.name}'s limits: ${left.join("; ")}`, EXIT.usage);
  const estimate = planEstimate(bursts, component.latency);
  const gpuMinutes = (estimate.gpuMs / 60_000) * component.accelerators_per_copy;
  const dollars = (gpuMinutes / 60) * gpuHourPrice(component);
  const deployed = options.prefix === undefined ? undefined : sageMakerNames(options.prefix);
  const endpoint = options.endpoint ?? deployed?.endpoint(component.endpointName) ?? component.endpointName;
  const inferenceComponent = options.inferenceComponent ?? deployed?.inferenceComponent(component.name) ?? component.name;
  log(`calibrate ${inferenceComponent} on endpoint ${endpoint}: ${bursts.length} bursts, ${estimate.requests} requests (batch sizes ${options.grid.batchSizes.join(", ")} × prompts ${options.grid.promptTokens.join(", ")} × outputs 1, ${options.grid.newTokens.join(", ")} tokens, ${options.grid.repeats} repeats)`);
  log(`  estimated by the current profile ${component.latency.name}: ${gpuMinutes.toFixed(2)} GPU-minutes on ${component.accelerators_per_copy} GPU(s) a copy, about $${dollars.toFixed(2)} at $${gpuHourPrice(component).toFixed(2)} a GPU-hour (and the endpoint's instances bill for as long as it runs)`);
  if (left.length > 0) log(`  left out, over the component's limits: ${left.join("; ")}`);
  const go = options.yes || (await (io.confirm ?? askOnTerminal)("Send them? [y/N] "));
  if (!go) {
    log("calibrate: nothing sent");
    return EXIT.cancelled;
  }
  // The batcher's own client settings: one attempt per call, a socket for every prompt of a burst.
  const client = sageMakerRuntimeClient({ region: options.region });
  const invoker = new SageMakerInvoker({ client, catalog, names: { endpoint: () => endpoint, inferenceComponent: () => inferenceComponent } });
  let measurements: BurstMeasurement[];
  try {
    measurements = await runCalibration({ invoker, now: () => performance.now() }, component, bursts, promptMaker(component, tokenizer), (done, m) => {
      log(`  ${done}/${bursts.length}: ${m.burst.batch} × ${m.burst.promptTokens} + ${m.burst.newTokens} tokens in ${m.ms.toFixed(0)} ms`);
    }, (burst, reason) => log(`  ${burst.batch} × ${burst.promptTokens} + ${burst.newTokens} tokens failed (${reason}); sending it again`));
  } catch (error) {
    if (error instanceof CalibrationCallError) throw new CliError(`calibrate: ${error.message}; no profile written`, EXIT.failed);
    throw error;
  } finally {
    client.destroy();
  }
  let fit: ProfileFit;
  try {
    fit = fitProfile(measurements, component.latency, options.name ?? `${component.name}-calibrated`);
  } catch (error) {
    if (error instanceof CalibrationFitError) throw new CliError(`calibrate: ${error.message}; no profile written`, EXIT.failed);
    throw error;
  }
  log(report(component.latency, fit));
  const file = profileFileOf(
    {
      latency: fit.latency,
      gpu: gpuOf(component),
      footprint: component.hardware.footprint,
      provenance: {
        gpu: `${component.endpointSpec.gpu} (${component.endpointSpec.instance_type}, ${component.accelerators_per_copy} a copy)`,
        engine: `${component.engine}, format ${component.format}`,
        dtype: options.dtype ?? component.hardware.provenance.dtype,
        date: (io.today?.() ?? new Date()).toISOString().slice(0, 10),
        method: "measured",
        source: `batchline calibrate: ${estimate.requests} requests to ${inferenceComponent} on ${endpoint}; KV room and footprint from ${component.latency.name}`,
      },
    },
    {
      endpoint,
      inference_component: inferenceComponent,
      grid: options.grid,
      invocation_overhead_ms: round(fit.overheadMs),
      error: fit.error,
      bursts: measurements.map((m) => ({ ...m.burst, ms: round(m.ms), prompt_tokens: sum(m.sequences, "promptTokens"), new_tokens: sum(m.sequences, "newTokens") })),
    },
  );
  await writeFile(options.out, `${JSON.stringify(file, null, 1)}\n`);
  log(`profile ${fit.latency.name} written to ${options.out}; name it in routes.yml: components.${component.name}.profile: ./<its path from routes.yml>`);
  return EXIT.ok;
}

function componentOf(routesFile: string, name: string): { readonly catalog: RouteCatalog; readonly component: Component; readonly tokenizer: TokenizerName } {
  let catalog: RouteCatalog;
  try {
    catalog = loadRouteCatalog(routesFile);
  } catch (error) {
    throw new CliError(`${routesFile}: ${error instanceof Error ? error.message : String(error)}`, EXIT.usage);
  }
  const component = catalog.components.get(name);
  if (!component) throw new CliError(`${routesFile} has no component ${name}; it has ${[...catalog.components.keys()].join(", ")}`, EXIT.usage);
  const route = [...catalog.routes.values()].find((r) => r.components.some((c) => c.name === name));
  return { catalog, component, tokenizer: route?.tokenizer ?? "llama2" };
}

function gpuOf(component: Component): GpuName {
  const gpu = component.endpointSpec.gpu;
  return (gpuNames as readonly string[]).includes(gpu) ? (gpu as GpuName) : component.hardware.gpu;
}

/**
 * Prompts of common words that both Llama tokenizers encode as one token each (the emulator's
 * own vocabulary), the first three words spelling the prompt's index so that no two share a
 * prefix; counted with the route's tokenizer, so a model that splits them differently is timed on
 * what it got.
 */
function promptMaker(component: Component, tokenizer: TokenizerName): (burst: CalibrationBurst, index: number) => CalibrationPrompt {
  const counter = tokenCounter(tokenizer);
  const words = oneTokenWords;
  const wordAt = (i: number) => words[i % words.length] ?? "the";
  return (burst, index) => {
    const unique = [index, Math.floor(index / words.length), Math.floor(index / words.length ** 2)].map(wordAt);
    // BOS is a token of the prompt: P tokens are P - 1 words.
    const body = Array.from({ length: Math.max(0, burst.promptTokens - 1 - unique.length) }, (_, i) => wordAt(i * 7 + index));
    const prompt = [...unique, ...body].join(" ");
    const input = { prompt, max_new_tokens: burst.newTokens, ...(takesMessages(component.format) && { messages: [{ role: "user" as const, content: prompt }] }) };
    return { input, promptTokens: counter.countPrompt(prompt) };
  };
}

async function askOnTerminal(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) throw new CliError("calibrate sends requests to a GPU endpoint: confirm with --yes when not at a terminal", EXIT.usage);
  const terminal = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await terminal.question(question)).trim());
  } finally {
    terminal.close();
  }
}

const round = (ms: number) => Math.round(ms * 100) / 100;
const sum = (list: readonly { readonly promptTokens: number; readonly newTokens: number }[], key: "promptTokens" | "newTokens") => list.reduce((s, x) => s + x[key], 0);
const percent = (x: number) => `${(x * 100).toFixed(1)}%`;

/** The fitted numbers beside the current profile's, with the fit's error and a few predictions to compare. */
export function report(current: LatencyProfile, fit: ProfileFit): string {
  const f = fit.latency;
  const row = (label: string, now: number, fitted: number, digits: number) => `  ${label.padEnd(34)} ${now.toFixed(digits).padStart(12)} ${fitted.toFixed(digits).padStart(12)}`;
  return [
    `  ${"".padEnd(34)} ${current.name.slice(0, 12).padStart(12)} ${"fitted".padStart(12)}`,
    row("a  decode fixed, ms", current.decodeBaseMs, f.decodeBaseMs, 3),
    row("c  decode per sequence, ms", current.decodePerSequenceMs, f.decodePerSequenceMs, 5),
    row("b  decode per context token, ms", current.decodePerContextTokenMs, f.decodePerContextTokenMs, 7),
    row("p0 shortest prefill, ms", current.prefillMinMs, f.prefillMinMs, 2),
    row("r  prefill tokens per ms", current.prefillTokensPerMs, f.prefillTokensPerMs, 2),
    row("decode step, 32 × 1,024 context, ms", decodeStepMs(current, 32, 32 * 1024), decodeStepMs(f, 32, 32 * 1024), 2),
    row("prefill of 8,192 tokens, ms", prefillMs(current, 8192), prefillMs(f, 8192), 1),
    `  invocation overhead beside the GPU: ${fit.overheadMs.toFixed(1)} ms a call (not in the profile)`,
    `  fit error on the bursts' times: decode median ${percent(fit.error.decode.median)}, largest ${percent(fit.error.decode.largest)} (${fit.error.decode.points} bursts); prefill median ${percent(fit.error.prefill.median)}, largest ${percent(fit.error.prefill.largest)} (${fit.error.prefill.points})`,
  ].join("\n");
}
