import { z } from "zod";
import { ValidationError } from "../core/errors.ts";
import { LANES } from "../core/lanes.ts";
import type { Route } from "../core/routes.ts";
import { toValidationError } from "../core/submission.ts";
import type { RecentJob } from "../ports.ts";
import { generateTrace } from "./trace.ts";
import type { SimJob } from "./world.ts";

/**
 * A route's recent arrivals as a trace (`batchline trace export`, GET /v1/routes/{model}/trace):
 * each job's arrival after the window's start, its prompt and max new tokens, and its lane. The
 * tuning simulator replays it; the file is this JSON.
 */
export const recordedTraceSchema = z.strictObject({
  model: z.string().min(1),
  from: z.iso.datetime(),
  to: z.iso.datetime(),
  jobs: z.array(
    z.strictObject({
      at_ms: z.number().min(0),
      prompt_tokens: z.number().int().positive(),
      max_tokens: z.number().int().positive(),
      lane: z.enum(LANES),
    }),
  ),
});

export type RecordedTrace = z.infer<typeof recordedTraceSchema>;

/** The longest window a trace may cover, and the most jobs it carries: what a Lambda simulates in a second or two. */
export const MAX_TRACE_MINUTES = 60;
export const MAX_TRACE_JOBS = 20_000;

/** `?minutes=` of a trace request: 1 to MAX_TRACE_MINUTES, default `fallback`. */
export function traceMinutes(raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw === "") return fallback;
  const minutes = Number(raw);
  if (!Number.isInteger(minutes) || minutes < 1 || minutes > MAX_TRACE_MINUTES) throw new ValidationError(`minutes: must be an integer from 1 to ${MAX_TRACE_MINUTES}`, "minutes");
  return minutes;
}

/** The jobs table's recent jobs of a route as a trace over [from, to]. Jobs without a lane came before lanes: the batch lane. */
export function recordedTrace(model: string, recent: readonly RecentJob[], from: Date, to: Date): RecordedTrace {
  return {
    model,
    from: from.toISOString(),
    to: to.toISOString(),
    jobs: recent.map((j) => ({ at_ms: Math.max(0, Date.parse(j.created_at) - from.getTime()), prompt_tokens: j.prompt_tokens, max_tokens: j.max_tokens, lane: j.lane ?? "batch" })),
  };
}

/** A trace file's contents, checked: a ValidationError names what is wrong. */
export function parseRecordedTrace(value: unknown): RecordedTrace {
  const parsed = recordedTraceSchema.safeParse(value);
  if (!parsed.success) throw toValidationError(parsed.error);
  return parsed.data;
}

export function simJobsOfRecorded(trace: RecordedTrace): SimJob[] {
  return trace.jobs.map((j, i) => ({ id: `r${i}`, atMs: j.at_ms, promptTokens: j.prompt_tokens, maxTokens: j.max_tokens, lane: j.lane }));
}

/** How long a recorded trace's window is, ms. */
export const recordedSpanMs = (trace: RecordedTrace) => Math.max(1000, Date.parse(trace.to) - Date.parse(trace.from));

/**
 * A route with no recent jobs is predicted on this: Poisson arrivals at 60 a minute per copy
 * (a tenth of what a copy of Llama-2-7B on an H100 serves at 512 + 512), interactive.
 */
export function syntheticTrace(route: Route, durationMs: number, seed = 1): SimJob[] {
  const copies = route.components.reduce((n, c) => n + Math.max(1, c.copies), 0);
  const lengths = { kind: "fixed" as const, promptTokens: Math.min(512, route.limits.max_prompt_tokens), maxTokens: Math.min(512, route.limits.max_new_tokens) };
  return generateTrace({ seed, durationMs, arrivals: { kind: "poisson", rpm: 60 * copies }, lengths }).map((r) => ({
    id: `s${r.index}`, atMs: r.atMs, promptTokens: r.promptTokens, maxTokens: r.maxTokens, lane: "interactive",
  }));
}
