import { setTimeout as delay } from "node:timers/promises";
import type { InvocationReport } from "#local/process-invoker";
import { countBy } from "./counting.ts";
import type { RunConsole } from "./logs.ts";
import type { ChaosOptions } from "./options.ts";
import type { StateSampler } from "./sampler.ts";
import type { Submissions } from "./submissions.ts";
import { isTerminalStatus } from "./writes.ts";

export type DrainWatch = {
  readonly options: ChaosOptions;
  readonly submissions: Submissions;
  readonly sampler: StateSampler;
  /** Every write asked of a job's record, to show why the last few open jobs are still open. */
  readonly history: ReadonlyMap<string, readonly string[]>;
  readonly invocations: readonly InvocationReport[];
  readonly console: RunConsole;
  readonly signal: AbortSignal | undefined;
};

/**
 * Samples every job's state until all accepted jobs are terminal and submitting is over, or the
 * drain deadline passes, printing progress every 10 s; resolves with when submitting ended.
 */
export async function drain({ options, submissions, sampler, history, invocations, console, signal }: DrainWatch): Promise<number | undefined> {
  let submitEndedAt: number | undefined;
  let lastProgress = 0;
  for (;;) {
    const states = await sampler.sample();
    const { submitted, accepted } = submissions;
    if (submitted && submitEndedAt === undefined) {
      submitEndedAt = Date.now();
      console.say(`all submitted: ${accepted.size} accepted in ${((submitEndedAt - submissions.startedAt) / 1000).toFixed(1)} s`);
    }
    const open = [...accepted].filter((id) => !isTerminalStatus(states.get(id)));
    if (Date.now() - lastProgress > 10_000) {
      lastProgress = Date.now();
      console.say(progressLine(states, accepted.size, open.length, invocations));
      if (submitted && open.length > 0 && open.length <= 3) {
        for (const id of open) console.print(`    open ${id} ${states.get(id) ?? "no record"}: ${(history.get(id) ?? []).join("; ")}`);
      }
    }
    if (signal?.aborted) throw new Error("chaos run interrupted");
    if (submitted && open.length === 0) break;
    if (submitEndedAt !== undefined && Date.now() - submitEndedAt > options.drainTimeoutMs) {
      console.say(`drain deadline passed with ${open.length} jobs not terminal`);
      break;
    }
    const pause = sampler.pauseAfterScan(options.sampleEveryMs);
    await (submitted ? delay(pause) : Promise.race([delay(pause), submissions.done]));
  }
  return submitEndedAt;
}

function progressLine(states: ReadonlyMap<string, string>, accepted: number, open: number, invocations: readonly InvocationReport[]): string {
  const counts = countBy([...states.values()], (s) => s);
  const runs = invocations.filter((r) => r.functionName.endsWith("-batcher"));
  const killed = runs.filter((r) => r.outcome === "killed").length;
  return `${accepted} accepted, ${open} open; ${Object.entries(counts).map(([k, v]) => `${k} ${v}`).join(", ")}; batcher runs ${runs.length} (${killed} killed)`;
}
