import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { submitBatch, submitJob } from "#shared/app/submit";
import { handleClientMessage } from "#shared/app/websocket";
import type { ErrorCode } from "#shared/core/errors";
import type { ServerEvent } from "#shared/core/events";
import { connectionOf, defaultCatalog, memoryDeps } from "../../helpers/fakes.ts";
import { fuzzParams, jobWithInvalid, junkJson, memoryState, nastyString, ownObject, prototypeKeys, validJob, type RouteLimits } from "../../helpers/fuzz.ts";

// Every WebSocket frame a client sends goes through handleClientMessage. A bad one gets one
// `error` event, changes nothing, and leaves the connection usable.
const catalog = defaultCatalog();
const routes: RouteLimits[] = [...catalog.routes.values()].map((r) => ({ name: r.name, maxNewTokens: r.limits.max_new_tokens }));
const errorCodes: readonly ErrorCode[] = ["invalid_request", "unauthorized", "forbidden", "not_found", "conflict", "payload_too_large", "rate_limited"];
const hi = { model: "llama-2-7b", prompt: "hi", max_tokens: 2 };

/** A connection of acme with jobs and batches of its own and of another tenant, in every state that matters. */
async function world() {
  const deps = memoryDeps(catalog);
  const now = deps.clock.now();
  await deps.connections.put(connectionOf("c1", "acme"));
  const queued = (await submitJob(deps, "acme", hi)).job.job_id;
  const finished = (await submitJob(deps, "acme", hi)).job.job_id;
  const done = deps.jobs.jobs.get(finished);
  if (done) deps.jobs.jobs.set(finished, { ...done, status: "SUCCEEDED", finished_at: now.toISOString(), result: { text: "x", prompt_tokens: 2, completion_tokens: 1, finish_reason: "length" } });
  const cancelled = (await submitJob(deps, "acme", hi)).job.job_id;
  await deps.jobs.endUnfinished(cancelled, { status: "CANCELLED", error: { code: "cancelled", message: "cancelled" } }, now);
  const foreign = (await submitJob(deps, "globex", hi)).job.job_id;
  const batch = (await submitBatch(deps, "acme", JSON.stringify({ custom_id: "a", body: hi }))).batch.batch_id;
  const foreignBatch = (await submitBatch(deps, "globex", JSON.stringify({ custom_id: "a", body: hi }))).batch.batch_id;
  return { deps, ids: { queued, finished, cancelled, foreign, batch, foreignBatch } };
}
type World = Awaited<ReturnType<typeof world>>;
type IdName = keyof World["ids"];

/** An id as a frame may carry it: one of the world's (by name, resolved per run), or junk. */
const idRef: fc.Arbitrary<{ ref: IdName } | { raw: string }> = fc.oneof(
  fc.constantFrom<IdName>("queued", "finished", "cancelled", "foreign", "batch", "foreignBatch").map((ref) => ({ ref })),
  fc.oneof(nastyString, fc.constantFrom("job_999", "batch_999", "j".repeat(3000), "job_1 ", "JOB_1")).map((raw) => ({ raw })),
);
const resolve = (w: World, id: { ref: IdName } | { raw: string }) => ("ref" in id ? w.ids[id.ref] : id.raw);

/** A frame described with id references, turned into text once the world exists. */
type FrameSpec = (w: World) => string;

const structuredFrame: fc.Arbitrary<FrameSpec> = fc
  .record(
    {
      action: fc.oneof(fc.constantFrom("subscribe", "cancel", "submit"), nastyString, fc.constantFrom(null, 1, ["subscribe"], { subscribe: true })),
      job_ids: fc.oneof(
        fc.array(idRef, { minLength: 1, maxLength: 5 }),
        fc.constant([] as { raw: string }[]),
        fc.integer({ min: 101, max: 400 }).map((n) => Array.from({ length: n }, (_, i) => ({ raw: `job_${i}` }))),
        junkJson.map((v) => ({ junk: v })),
      ),
      batch_id: fc.oneof(idRef, junkJson.map((v) => ({ junk: v }))),
      job: fc.oneof(jobWithInvalid(routes, new Date("2026-11-27T12:00:00Z"), { min: 1, max: 2 }).map((j) => j.job), junkJson),
      request_id: fc.oneof(fc.string({ maxLength: 20 }), fc.constant("r".repeat(129)), junkJson),
    },
    { requiredKeys: [] },
  )
  .chain((spec) => fc.tuple(fc.constant(spec), fc.option(fc.tuple(fc.constantFrom(...prototypeKeys, "extra", "jobIds"), junkJson), { nil: undefined })))
  .map(([spec, extra]) => (w: World) => {
    const value = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map((x) => resolve(w, x as { ref: IdName } | { raw: string }));
      if (typeof v === "object" && v !== null && "junk" in v) return (v as { junk: unknown }).junk;
      if (typeof v === "object" && v !== null && ("ref" in v || "raw" in v)) return resolve(w, v as { ref: IdName } | { raw: string });
      return v;
    };
    const entries: [string, unknown][] = Object.entries(spec).map(([k, v]) => [k, k === "job" || k === "request_id" || k === "action" ? v : value(v)]);
    if (extra) entries.push([extra[0], extra[1]]);
    return JSON.stringify(ownObject(entries));
  });

/** Frames of the right shape whose ids are anyone's: own, foreign, finished, unknown, huge. */
const nearValidFrame: fc.Arbitrary<FrameSpec> = fc.oneof(
  fc.tuple(fc.constantFrom("subscribe", "cancel"), fc.array(idRef, { minLength: 1, maxLength: 5 }), fc.option(fc.string({ maxLength: 8 }), { nil: undefined })).map(
    ([action, ids, rid]) => (w: World) => JSON.stringify({ action, job_ids: ids.map((id) => resolve(w, id)), request_id: rid }),
  ),
  fc.tuple(fc.constantFrom("subscribe", "cancel"), idRef).map(([action, id]) => (w: World) => JSON.stringify({ action, batch_id: resolve(w, id) })),
  fc.tuple(fc.oneof(jobWithInvalid(routes, new Date("2026-11-27T12:00:00Z"), { min: 1, max: 2 }).map((j) => j.job), junkJson), fc.option(fc.string({ maxLength: 8 }), { nil: undefined })).map(
    ([job, rid]) => () => JSON.stringify({ action: "submit", job, request_id: rid }),
  ),
);

/** Breaks a frame's JSON text the way clients do: truncated, doubled, a BOM, junk inserted, single quotes. */
const mangling: fc.Arbitrary<(text: string) => string> = fc.oneof(
  fc.constant((t: string) => `\ufeff${t}`),
  fc.constant((t: string) => `${t}${t}`),
  fc.constant((t: string) => `${t},`),
  fc.constant((t: string) => t.replaceAll('"', "'")),
  fc.double({ min: 0, max: 1, noNaN: true }).map((at) => (t: string) => t.slice(0, Math.floor(at * t.length))),
  fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom("\u0000", "'", "}", "{", "]", "\\", "\n", "\ud800", "NaN")).map(([at, junk]) => (t: string) => {
    const i = Math.floor(at * t.length);
    return t.slice(0, i) + junk + t.slice(i);
  }),
);

/** Shows a frame in a counterexample with the world's ids as placeholders ("<queued>", "<foreign>"). */
const placeholders = { ids: { queued: "<queued>", finished: "<finished>", cancelled: "<cancelled>", foreign: "<foreign>", batch: "<batch>", foreignBatch: "<foreignBatch>" } } as World;
const readable = (spec: FrameSpec): FrameSpec => Object.assign((w: World) => spec(w), { [fc.toStringMethod]: () => JSON.stringify(spec(placeholders)) });

const anyFrame: fc.Arbitrary<FrameSpec> = fc.oneof(
  { weight: 1, arbitrary: nastyString.map((s) => () => s) },
  { weight: 1, arbitrary: junkJson.map((v) => () => JSON.stringify(v) ?? "") },
  { weight: 1, arbitrary: fc.constantFrom("", " ", "null", "[]", "{}", "1e309", '"subscribe"', '{"action":"subscribe","action":"nope"}', '{"__proto__":{"action":"subscribe"}}').map((s) => () => s) },
  { weight: 2, arbitrary: structuredFrame },
  { weight: 4, arbitrary: nearValidFrame },
  { weight: 1, arbitrary: fc.tuple(fc.oneof(structuredFrame, nearValidFrame), mangling).map(([f, mangle]) => (w: World) => mangle(f(w))) },
).map(readable);

const newEvents = (w: World, before: number): ServerEvent[] => w.deps.notifier.eventsFor("c1").slice(before);

describe("WebSocket frames under fuzzing", () => {
  it("answers any frame: a bad one gets exactly one error event and changes nothing", async () => {
    await fc.assert(
      fc.asyncProperty(anyFrame, async (spec) => {
        const w = await world();
        const frame = spec(w);
        const before = memoryState(w.deps, ["notifier"]);
        const seen = w.deps.notifier.eventsFor("c1").length;
        await handleClientMessage(w.deps, "c1", frame);
        const events = newEvents(w, seen);
        const errors = events.filter((e) => e.type === "error");
        if (errors.length === 0) return; // a frame that happened to be valid
        expect(events).toHaveLength(1);
        const [event] = errors;
        if (event?.type !== "error") return;
        expect(errorCodes).toContain(event.error.code);
        expect(event.error.message.trim()).not.toBe("");
        expect(memoryState(w.deps, ["notifier"])).toEqual(before);
        // Nobody else was told anything either.
        expect(w.deps.notifier.posts.filter((p) => p.connectionId !== "c1")).toEqual([]);
      }),
      fuzzParams(600),
    );
  });

  it("keeps serving the connection after junk: a valid subscribe still works", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(anyFrame, { minLength: 1, maxLength: 6 }), async (specs) => {
        const w = await world();
        for (const spec of specs) await handleClientMessage(w.deps, "c1", spec(w));
        const seen = w.deps.notifier.eventsFor("c1").length;
        await handleClientMessage(w.deps, "c1", JSON.stringify({ action: "subscribe", job_ids: [w.ids.finished], request_id: "last" }));
        expect(newEvents(w, seen).map((e) => e.type)).toEqual(["subscribed", "job.succeeded"]);
      }),
      fuzzParams(150),
    );
  });

  it("accepts valid frames: subscribe to own jobs or batch, submit a valid job, cancel own unfinished jobs", async () => {
    const valid = fc.oneof(
      fc.subarray<IdName>(["queued", "finished", "cancelled"], { minLength: 1 }).map((names) => ({ kind: "subscribe" as const, names })),
      fc.constant({ kind: "batch" as const }),
      validJob(routes, new Date("2026-11-27T12:00:00Z")).map((job) => ({ kind: "submit" as const, job: { ...job, idempotency_key: undefined } })),
      fc.subarray<IdName>(["queued", "cancelled"], { minLength: 1 }).map((names) => ({ kind: "cancel" as const, names })),
    );
    await fc.assert(
      fc.asyncProperty(valid, fc.option(fc.string({ maxLength: 128 }), { nil: undefined }), async (frame, requestId) => {
        const w = await world();
        const seen = w.deps.notifier.eventsFor("c1").length;
        const rid = requestId === undefined ? {} : { request_id: requestId };
        if (frame.kind === "subscribe") {
          const ids = frame.names.map((n) => w.ids[n]);
          await handleClientMessage(w.deps, "c1", JSON.stringify({ action: "subscribe", job_ids: ids, ...rid }));
          const events = newEvents(w, seen);
          expect(events[0]).toEqual({ type: "subscribed", job_ids: ids });
          // A waiting job says where it stands; an ended one, how it ended.
          const told: Record<string, string> = { queued: "job.waiting", finished: "job.succeeded", cancelled: "job.cancelled" };
          expect(events.slice(1).map((e) => e.type).sort()).toEqual(frame.names.map((n) => told[n]).sort());
        } else if (frame.kind === "batch") {
          await handleClientMessage(w.deps, "c1", JSON.stringify({ action: "subscribe", batch_id: w.ids.batch, ...rid }));
          expect(newEvents(w, seen).map((e) => e.type)).toEqual(["subscribed", "batch.progress"]);
        } else if (frame.kind === "submit") {
          const jobs = w.deps.jobs.jobs.size;
          await handleClientMessage(w.deps, "c1", JSON.stringify({ action: "submit", job: frame.job, ...rid }));
          expect(newEvents(w, seen)).toMatchObject([{ type: "job.queued", ...rid }]);
          expect(w.deps.jobs.jobs.size).toBe(jobs + 1);
        } else {
          const ids = frame.names.map((n) => w.ids[n]);
          await handleClientMessage(w.deps, "c1", JSON.stringify({ action: "cancel", job_ids: ids, ...rid }));
          expect(newEvents(w, seen).filter((e) => e.type === "error")).toEqual([]);
          for (const id of ids) expect(w.deps.jobs.jobs.get(id)?.status).toBe("CANCELLED");
        }
      }),
      fuzzParams(300),
    );
  });
});

describe("WebSocket frames: inputs fuzzing found", () => {
  it.each<[string, (w: World) => string[], ErrorCode]>([
    ["another tenant's", (w) => [w.ids.queued, w.ids.foreign], "not_found"],
    ["an unknown", (w) => [w.ids.queued, "job_999"], "not_found"],
    ["a finished", (w) => [w.ids.queued, w.ids.finished], "conflict"],
  ])("cancels nothing when one of the jobs is %s one", async (_, ids, code) => {
    const w = await world();
    const before = memoryState(w.deps, ["notifier"]);
    await handleClientMessage(w.deps, "c1", JSON.stringify({ action: "cancel", job_ids: ids(w) }));
    expect(w.deps.notifier.eventsFor("c1")).toMatchObject([{ type: "error", error: { code } }]);
    expect(w.deps.jobs.jobs.get(w.ids.queued)?.status).toBe("QUEUED");
    expect(memoryState(w.deps, ["notifier"])).toEqual(before);
  });
});
