import { generationInputOf, type GenerationInput, type GenerationOutput } from "../../core/engine-codec.ts";
import { jobTopic, tokenEvent, type TokenEvent } from "../../core/events.ts";
import type { GenerationRequest, JobRecord } from "../../core/jobs.ts";
import type { Component } from "../../core/routes.ts";
import { jsonBytes, TOKEN_FRAME_INTERVAL_MS, TokenCoalescer, WEBSOCKET_FRAME_BYTES, type TokenFrame } from "../../core/token-coalescer.ts";
import type { InvokeOptions } from "../../ports.ts";
import { postToConnections } from "../notify.ts";
import type { GpuCall } from "./gpu-call.ts";
import type { BatcherDeps } from "./types.ts";

/**
 * How long a streamed job's subscriber list is used before it is read again: a read per frame
 * would be a DynamoDB query every 50 ms per job, while a client that subscribes mid-stream gets
 * the text from at most this much later.
 */
export const SUBSCRIBERS_REREAD_MS = 1_000;

/** Whether a job runs streamed: it asked to, and its engine streams (a dynamic batch cannot: it runs unstreamed). */
export function streams(component: Component, request: GenerationRequest): boolean {
  return request.stream === true && component.engine !== "lmi-dynamic";
}

/** When a streamed call's text first and last arrived, on the batcher's clock (the profile's drift times its decode steps by them). */
export type TextTimes = { firstMs?: number; lastMs?: number };

/** A claimed job of the call, with its job.running event on its way. */
type Claimed = { readonly job: JobRecord; readonly told: Promise<unknown> };

/** Whether the call takes the streaming path; every other call is invoked as it always was. */
export function streamsAny(call: GpuCall, claimed: readonly Claimed[]): boolean {
  return claimed.some(({ job }) => streams(call.component, job.request));
}

/**
 * Runs a call with a streamed job (a rolling or vLLM call holds one job): a streamed job through
 * invokeStream, its text posted to its subscribers as job.token events while it generates; any
 * other alone through invoke. Settles as Invoker.invoke does, once each job's last token frame has
 * been posted, so that its final event comes after it.
 */
export function invokeStreamed(deps: BatcherDeps, call: GpuCall, claimed: readonly Claimed[], options: InvokeOptions = {}, textTimes: TextTimes = {}): Promise<PromiseSettledResult<GenerationOutput>[]> {
  return Promise.allSettled(
    claimed.map(async ({ job, told }) => {
      const input = generationInputOf(job.request, call.chatTemplate, call.component.format);
      if (streams(call.component, job.request)) return streamJob(deps, call.component, job, told, input, options, textTimes);
      const [settled] = await deps.invoker.invoke(call.component, [input], options);
      if (settled?.status === "fulfilled") return settled.value;
      throw settled?.reason ?? new Error("no result");
    }),
  );
}

async function streamJob(deps: BatcherDeps, component: Component, job: JobRecord, told: Promise<unknown>, input: GenerationInput, options: InvokeOptions, textTimes: TextTimes): Promise<GenerationOutput> {
  const frames = new TokenFrames(deps, job, told);
  const arrived = (text: string) => {
    const nowMs = deps.clock.now().getTime();
    textTimes.firstMs ??= nowMs;
    textTimes.lastMs = nowMs;
    frames.add(text);
  };
  let ok = false;
  try {
    const output = await deps.invoker.invokeStream(component, input, arrived, options);
    ok = true;
    return output;
  } finally {
    await frames.end(ok);
  }
}

/**
 * Posts a job's text to its subscribers as it comes, coalesced into frames (TokenCoalescer). Best
 * effort, as every notification: a post or read that fails is logged and the job runs on.
 */
export class TokenFrames {
  readonly #deps: BatcherDeps;
  readonly #job: JobRecord;
  readonly #coalescer: TokenCoalescer;
  readonly #pump: Promise<void>;
  readonly #ended = Promise.withResolvers<void>();
  #text = Promise.withResolvers<void>();
  #failed: boolean | undefined;
  #subscribers: { readonly list: Promise<readonly string[]>; readonly readAtMs: number };

  constructor(deps: BatcherDeps, job: JobRecord, told: Promise<unknown>) {
    this.#deps = deps;
    this.#job = job;
    const longest: TokenEvent = { type: "job.token", job_id: job.job_id, version: Number.MAX_SAFE_INTEGER, attempt: job.attempt, index: Number.MAX_SAFE_INTEGER, text: "", tokens: Number.MAX_SAFE_INTEGER, restarted: true };
    this.#coalescer = new TokenCoalescer({ intervalMs: TOKEN_FRAME_INTERVAL_MS, maxTextBytes: WEBSOCKET_FRAME_BYTES - jsonBytes(longest) });
    // Read while the engine reads the prompt, so that the first token does not wait for it.
    this.#subscribers = this.#readSubscribers();
    this.#pump = this.#run(told);
  }

  add(text: string, tokens = 1): void {
    this.#coalescer.add(text, tokens);
    this.#text.resolve();
  }

  /**
   * The stream is over: the text still held goes out at once, or, when the stream failed, never
   * (its retry streams from the start and says so).
   */
  end(ok: boolean): Promise<void> {
    this.#failed = !ok;
    this.#ended.resolve();
    return this.#pump;
  }

  async #run(told: Promise<unknown>): Promise<void> {
    // The job's job.running event goes first.
    await told;
    for (;;) {
      this.#text = Promise.withResolvers<void>();
      if (this.#failed === true) return;
      if (this.#failed === false) return this.#post(this.#coalescer.drain());
      const nowMs = this.#deps.clock.now().getTime();
      const frame = this.#coalescer.take(nowMs);
      if (frame) {
        await this.#post([frame]);
        continue;
      }
      const dueAtMs = this.#coalescer.dueAtMs;
      if (dueAtMs === undefined) await Promise.race([this.#text.promise, this.#ended.promise]);
      else await this.#deps.sleep(dueAtMs - nowMs, this.#ended.promise);
    }
  }

  /** Posts frames in order: the next only once every subscriber has had the one before. */
  async #post(frames: readonly TokenFrame[]): Promise<void> {
    for (const frame of frames) {
      const connections = await this.#currentSubscribers();
      try {
        const { gone } = await postToConnections(this.#deps, connections, tokenEvent(this.#job, frame));
        if (gone.length > 0) this.#subscribers = { ...this.#subscribers, list: Promise.resolve(connections.filter((c) => !gone.includes(c))) };
      } catch (error) {
        this.#deps.logger.warn("could not post a streamed job's text", { jobId: this.#job.job_id, index: frame.index, error: String(error) });
      }
    }
  }

  #currentSubscribers(): Promise<readonly string[]> {
    if (this.#deps.clock.now().getTime() - this.#subscribers.readAtMs >= SUBSCRIBERS_REREAD_MS) this.#subscribers = this.#readSubscribers();
    return this.#subscribers.list;
  }

  #readSubscribers() {
    const list = this.#deps.subscriptions.subscribers(jobTopic(this.#job.job_id)).catch((error: unknown) => {
      this.#deps.logger.warn("could not read a streamed job's subscribers; its text goes to nobody until the next read", { jobId: this.#job.job_id, error: String(error) });
      return [];
    });
    return { list, readAtMs: this.#deps.clock.now().getTime() };
  }
}
