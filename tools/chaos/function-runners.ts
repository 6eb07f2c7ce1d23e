import { type InvocationReport, type KillQuestion, type ProcessInvoker, processInvoker } from "#local/process-invoker";
import type { FunctionModules } from "./functions.ts";
import type { ChaosOptions } from "./options.ts";
import type { WriteLog } from "./writes.ts";

export type RunnerSettings = {
  readonly options: ChaosOptions;
  /** `batchline-<stage>`: the functions' deployed names start with it. */
  readonly prefix: string;
  readonly modules: FunctionModules;
  readonly writes: WriteLog;
  readonly random: () => number;
  readonly writeLog: (line: string) => void;
};

/**
 * The batcher and the dead-letter function, a process per invocation, so that a batcher can be
 * SIGKILLed mid-batch while `killing` is on: a share at a random moment, and the first ones at a
 * claim of one of their jobs, so that even a short run sees a kill that matters.
 */
export class FunctionRunners {
  readonly invoker: ProcessInvoker;
  readonly invocations: InvocationReport[] = [];
  killing = false;
  readonly #env = Promise.withResolvers<Readonly<Record<string, string>>>();
  readonly #settings: RunnerSettings;
  #batchersKilled = 0;
  #sureKillsArmed = 0;

  constructor(settings: RunnerSettings) {
    this.#settings = settings;
    const { options, prefix, modules, writeLog } = settings;
    this.invoker = processInvoker({
      functions: {
        [`${prefix}-batcher`]: { module: modules.batcher, timeoutSeconds: options.lambdaTimeoutSeconds, memoryMb: 1024 },
        [`${prefix}-deadLetter`]: { module: modules.deadLetter, timeoutSeconds: 29, memoryMb: 512 },
      },
      // Invocations wait for the stack's endpoints, known once it is up.
      env: () => this.#env.promise,
      kill: (question) => this.#pickKill(question),
      onInvocation: (report) => {
        this.invocations.push(report);
        if (report.functionName.endsWith("-batcher") && report.outcome === "killed") this.#batchersKilled++;
      },
      onOutput: (fn, chunk) => writeLog(`[${fn.slice(prefix.length + 1)}] ${chunk.trimEnd()}`),
    });
  }

  /** The environment every invocation gets. */
  setEnv(env: Readonly<Record<string, string>>): void {
    this.#env.resolve(env);
  }

  #pickKill({ functionName, event, ended }: KillQuestion): number | Promise<unknown> | undefined {
    const { options, writes, random } = this.#settings;
    if (!this.killing || !functionName.endsWith("-batcher")) return undefined;
    if (this.#batchersKilled + this.#sureKillsArmed < options.killFirst) {
      // Disarmed when the invocation ends without having claimed a job (all of them done already).
      this.#sureKillsArmed++;
      ended.addEventListener("abort", () => this.#sureKillsArmed--, { once: true });
      return writes.nextClaim(jobIdsOf(event), ended);
    }
    if (random() >= options.killFraction) return undefined;
    const [from, to] = options.killWindowMs;
    return from + random() * (to - from);
  }
}

/** The jobs an SQS event carries (the job messages' job_id). */
function jobIdsOf(event: { readonly Records: readonly unknown[] }): string[] {
  return event.Records.flatMap((record) => {
    const body = (record as { body?: unknown }).body;
    const jobId = typeof body === "string" ? parseJsonObject(body)?.job_id : undefined;
    return typeof jobId === "string" ? [jobId] : [];
  });
}

function parseJsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
