import { advance, continues, needsSeveralCalls, nextCall, nextCallFits, NO_PROGRESS, outputOf, stopAcrossSeam, stopPrefixAtEnd, stopsOf, tokensPerCall, type Progress } from "../../core/continuation.ts";
import { generationInputOf, type GenerationInput, type GenerationOutput } from "../../core/engine-codec.ts";
import type { JobRecord } from "../../core/jobs.ts";
import type { InvokeOptions } from "../../ports.ts";
import type { GpuCall } from "./gpu-call.ts";
import { streams, TokenFrames } from "./stream-call.ts";
import type { BatcherDeps, RunHandle } from "./types.ts";

/** A generation's output over all its calls, with what the extra calls cost. */
export type ContinuedOutput = GenerationOutput & { readonly continuation: { readonly calls: number; readonly extraPrefillTokens: number } };
/** What a GPU call gives each of its jobs: the engine's output, and for a job continued over several calls what they cost. */
export type CallOutput = GenerationOutput & Partial<Pick<ContinuedOutput, "continuation">>;

/**
 * The batcher's time is up before the job's next call could answer: its text so far is stored,
 * and its message goes back to the queue for the next batcher to go on from there.
 */
export class HandedOver extends Error {
  readonly progress: Progress;

  constructor(progress: Progress) {
    super(`generation handed over after ${progress.tokens} tokens in ${progress.calls} calls: this batcher's time is up`);
    this.name = "HandedOver";
    this.progress = progress;
  }
}

/** Its progress could not be stored: a later attempt holds the job, or it ended (cancelled, expired). Nothing more to do. */
export class ProgressFencedOut extends Error {
  constructor(jobId: string) {
    super(`job ${jobId}: its progress was refused (a later attempt holds it, or it has ended)`);
    this.name = "ProgressFencedOut";
  }
}

/** The new tokens one call of this job is planned for, when the job runs over several calls on this call's component; else undefined. */
export function callPlanOf(call: Pick<GpuCall, "component">, job: JobRecord): number | undefined {
  if (!continues(call.component)) return undefined;
  const perCall = tokensPerCall(call.component.latency, call.component, job.prompt_tokens + job.request.max_tokens);
  return needsSeveralCalls(job.request.max_tokens, perCall, job.progress ?? NO_PROGRESS) ? perCall : undefined;
}

/**
 * Runs one job over as many calls as its length needs (core/continuation.ts), from the text a
 * previous attempt stored: each call the prompt plus the text so far, the progress stored after
 * every call but the last (one conditional write each), the last one's output the job's. A
 * streamed job's subscribers get its text across the calls as one stream (a resumed job's from
 * its stored text on, marked restarted as any retried attempt is).
 */
export async function runContinued(deps: BatcherDeps, call: GpuCall, job: JobRecord, told: Promise<unknown>, perCall: number, run: Pick<RunHandle, "lastCallStartMs">, options: InvokeOptions): Promise<ContinuedOutput> {
  const { component } = call;
  const base = generationInputOf(job.request, call.chatTemplate, component.format);
  const maxTokens = job.request.max_tokens;
  const stops = stopsOf(job.request.stop);
  const frames = streams(component, job.request) ? new SeamHeldFrames(new TokenFrames(deps, job, told), stops) : undefined;
  let progress = job.progress ?? NO_PROGRESS;
  const requestBytes = new TextEncoder().encode(JSON.stringify(job.request)).length;
  if (frames && progress.text.length > 0) frames.resume(progress);
  let ok = false;
  try {
    for (let callsHere = 0; ; callsHere++) {
      const input = nextCall(base, maxTokens, progress, perCall);
      // Nothing left to ask for (a stored progress never holds the last call's text; a guard only).
      if (!input) {
        ok = true;
        return finished(progress, "length");
      }
      if (!nextCallFits(progress, perCall, requestBytes)) {
        deps.logger.warn("long generation ended at the job item's size limit", { jobId: job.job_id, tokens: progress.tokens });
        ok = true;
        return finished(progress, "length");
      }
      // The finish reserve holds one call started by lastCallStartMs: a later one could outlive the batcher.
      if (callsHere > 0 && deps.clock.now().getTime() > run.lastCallStartMs) throw new HandedOver(progress);
      const output = await callOnce(deps, call, input, frames, options);
      const step = advance(progress, output, input.max_new_tokens, maxTokens, stops);
      frames?.callEnded(step.progress.text, step.done !== undefined);
      if (step.done) {
        ok = true;
        return finished(step.progress, step.done);
      }
      if (!(await deps.jobs.saveProgress(job.job_id, job.attempt, step.progress, progress.tokens))) throw new ProgressFencedOut(job.job_id);
      progress = step.progress;
    }
  } finally {
    await frames?.end(ok);
  }
}

function finished(progress: Progress, reason: GenerationOutput["finish_reason"]): ContinuedOutput {
  return { ...outputOf(progress, reason), continuation: { calls: progress.calls, extraPrefillTokens: progress.extra_prefill_tokens } };
}

async function callOnce(deps: BatcherDeps, call: GpuCall, input: GenerationInput, frames: SeamHeldFrames | undefined, options: InvokeOptions): Promise<GenerationOutput> {
  if (frames) return deps.invoker.invokeStream(call.component, input, (text) => frames.add(text), options);
  const [settled] = await deps.invoker.invoke(call.component, [input], options);
  if (settled?.status === "fulfilled") return settled.value;
  throw settled?.reason ?? new Error("no result");
}

/**
 * A streamed continued job's text to its subscribers, as one stream over its calls, with what a
 * stop sequence split by a seam would show held back: the end of the text that could begin a
 * stop waits for the text after it (the next call's, at a seam), and once the text is cut at
 * such a stop, nothing past the cut goes out. Held text goes out as the job ends.
 */
class SeamHeldFrames {
  readonly #frames: TokenFrames;
  readonly #stops: readonly string[];
  /** The job's text over its calls, where the call under way began in it, and how much of it went out. */
  #text = "";
  #callStart = 0;
  #sent = 0;
  #stopped = false;

  constructor(frames: TokenFrames, stops: readonly string[]) {
    this.#frames = frames;
    this.#stops = stops;
  }

  /** A resumed job's stored text goes out first, its end held back as any call's. */
  resume(progress: Progress): void {
    this.#text = progress.text;
    this.#callStart = progress.text.length;
    this.#release(this.#text.length - stopPrefixAtEnd(this.#text, this.#stops), progress.tokens);
  }

  add(text: string): void {
    if (this.#stopped) return;
    this.#text += text;
    const cut = stopAcrossSeam(this.#text.slice(0, this.#callStart), this.#text.slice(this.#callStart), this.#stops);
    if (cut !== undefined) {
      this.#release(cut, 1);
      this.#stopped = true;
      return;
    }
    // The engine lets out what could begin a stop once its call ends at its length: held here, until the next call tells.
    this.#release(this.#text.length - stopPrefixAtEnd(this.#text, this.#stops), 1);
  }

  /** The call ended with the job's text as `advance` left it (cut at a stop across the seam, if any); `done`: the job too. */
  callEnded(text: string, done: boolean): void {
    if (this.#stopped) return;
    this.#text = text;
    this.#callStart = text.length;
    this.#release(done ? text.length : text.length - stopPrefixAtEnd(text, this.#stops), 0);
  }

  end(ok: boolean): Promise<void> {
    return this.#frames.end(ok);
  }

  #release(upTo: number, tokens: number): void {
    if (upTo <= this.#sent) return;
    this.#frames.add(this.#text.slice(this.#sent, upTo), tokens);
    this.#sent = upTo;
  }
}
