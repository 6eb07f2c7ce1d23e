import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { handleDeadLetter } from "#shared/app/dead-letter";
import { processDelivery, type DeliveredMessage } from "#shared/app/process-delivery";
import { submitJob } from "#shared/app/submit";
import { jobMessageSchema } from "#shared/core/jobs";
import { defaultCatalog, memoryDeps } from "../../helpers/fakes.ts";
import { fuzzParams, junkJson, mangledJsonText, memoryState, nastyNumber, nastyString, ownObject, prototypeKeys } from "../../helpers/fuzz.ts";

// The batcher's queues should hold only our job messages, but SQS delivers whatever was sent to
// them. A body that is not ours must come back as a batch item failure (for the DLQ): no throw,
// no write, no GPU call, no notification.
const catalog = defaultCatalog();

const validMessage = {
  version: 1,
  job_id: "job_x",
  tenant: "acme",
  model: "llama-2-7b",
  prompt_tokens: 5,
  priority: 5,
  submitted_at: "2026-11-27T12:00:00.000Z",
  request: { prompt: "hello", max_tokens: 4 },
};

const notString = fc.oneof(nastyNumber.filter(Number.isFinite), fc.boolean(), fc.constant(null), fc.constant([]), fc.constant({}));
const notCount = fc.oneof(fc.constantFrom(0, -1, 0.5, "5", null, true, [], {}, Number.MAX_SAFE_INTEGER + 2), fc.integer({ max: 0 }));

/** Our message with one thing broken that the schema must refuse. */
const nearMiss: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom("version", "job_id", "tenant", "model", "prompt_tokens", "priority", "submitted_at", "request").map((k) => ownObject(Object.entries(validMessage).filter(([key]) => key !== k))),
  fc.tuple(fc.constantFrom("job_id", "tenant", "model", "submitted_at"), notString).map(([k, v]) => ({ ...validMessage, [k]: v })),
  fc.constantFrom("job_id", "tenant", "model").map((k) => ({ ...validMessage, [k]: "" })),
  fc.oneof(notCount, fc.constantFrom(0, 2, "1", null)).map((v) => ({ ...validMessage, version: v === 0 ? 2 : v })),
  notCount.map((v) => ({ ...validMessage, prompt_tokens: v })),
  fc.oneof(fc.integer({ max: -1 }), fc.integer({ min: 10 }), fc.constant(1.5), fc.constant("5")).map((v) => ({ ...validMessage, priority: v })),
  notCount.map((v) => ({ ...validMessage, request: { ...validMessage.request, max_tokens: v } })),
  notString.map((v) => ({ ...validMessage, request: v })),
  fc.tuple(fc.constantFrom(...prototypeKeys, "extra", "Version", "receiptHandle"), junkJson).map(([k, v]) => ownObject([...Object.entries(validMessage), [k, v]])),
  fc.tuple(fc.constantFrom(...prototypeKeys, "extra", "n"), junkJson).map(([k, v]) => ({ ...validMessage, request: ownObject([...Object.entries(validMessage.request), [k, v]]) })),
);

/** Bodies that are not ours: junk, any JSON, near misses, our message wrapped or re-encoded. */
const foreignBody: fc.Arbitrary<string> = fc.oneof(
  nastyString,
  junkJson.map((v) => JSON.stringify(v) ?? ""),
  nearMiss.map((v) => JSON.stringify(v)),
  mangledJsonText(JSON.stringify(validMessage)).filter((s) => {
    try {
      return !jobMessageSchema.safeParse(JSON.parse(s)).success;
    } catch {
      return true;
    }
  }),
  fc.constantFrom(
    JSON.stringify({ Type: "Notification", MessageId: "m", TopicArn: "arn:aws:sns:us-east-1:1:t", Message: JSON.stringify(validMessage) }),
    JSON.stringify({ Records: [{ eventSource: "aws:s3", s3: { bucket: { name: "b" }, object: { key: "k" } } }] }),
    JSON.stringify(JSON.stringify(validMessage)),
    Buffer.from(JSON.stringify(validMessage)).toString("base64"),
    "",
    " ",
  ),
);

const windowOf = (bodies: readonly string[], prefix = "m"): DeliveredMessage[] => bodies.map((body, i) => ({ messageId: `${prefix}${i}`, receiptHandle: `rh-${prefix}${i}`, body }));

async function depsWithAJob() {
  const deps = memoryDeps(catalog);
  // A job that exists, so that "nothing written" means something.
  const { job } = await submitJob(deps, "acme", { model: "llama-2-7b", prompt: "kept", max_tokens: 2 });
  deps.queue.takeDelivery();
  return { deps, job };
}

describe("batcher on SQS bodies that are not ours", () => {
  it("hands every foreign body back for the DLQ, writing nothing and calling no GPU", async () => {
    const { deps } = await depsWithAJob();
    const options = { topUpUntil: new Date(deps.clock.now().getTime() + 60_000) };
    await fc.assert(
      fc.asyncProperty(fc.array(foreignBody, { minLength: 1, maxLength: 12 }), async (bodies) => {
        const before = memoryState(deps);
        const window = windowOf(bodies);
        const report = await processDelivery(deps, window, options);
        expect(report).toEqual({ retry: window.map((m) => m.messageId), gpuBatchSizes: [], pulled: 0, pulledByLane: { interactive: 0, batch: 0 } });
        expect(memoryState(deps)).toEqual(before);
      }),
      fuzzParams(1000),
    );
  });

  it("runs the real jobs of a window and hands back only the foreign bodies", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(foreignBody, { maxLength: 6 }), fc.integer({ min: 1, max: 4 }), fc.nat(), async (bodies, jobs, shuffle) => {
        const deps = memoryDeps(catalog);
        const ids: string[] = [];
        for (let i = 0; i < jobs; i++) ids.push((await submitJob(deps, "acme", { model: "llama-2-7b", prompt: `p${i}`, max_tokens: 2 })).job.job_id);
        const ours = deps.queue.takeDelivery();
        const foreign = windowOf(bodies, "x");
        const window = [...ours, ...foreign];
        const mixed = window.map((m, i) => ({ m, k: (i * 7919 + shuffle) % 101 })).sort((a, b) => a.k - b.k).map(({ m }) => m);
        const report = await processDelivery(deps, mixed, { topUpUntil: new Date(deps.clock.now().getTime() + 60_000) });
        expect([...report.retry].sort()).toEqual(foreign.map((m) => m.messageId).sort());
        for (const id of ids) expect(deps.jobs.jobs.get(id)?.status).toBe("SUCCEEDED");
        expect(deps.invoker.calls).toHaveLength(jobs);
      }),
      fuzzParams(100),
    );
  });

  it("acknowledges a well-formed message of a job that does not exist, writing nothing and calling no GPU", async () => {
    const { deps } = await depsWithAJob();
    const options = { topUpUntil: new Date(deps.clock.now().getTime() + 60_000) };
    const forged = fc
      .record({
        job_id: fc.oneof(nastyString, fc.constant("job_999")).filter((s) => s.length > 0 && !deps.jobs.jobs.has(s)),
        tenant: fc.constantFrom("acme", "globex"),
        prompt_tokens: fc.integer({ min: 1, max: 50 }),
        priority: fc.integer({ min: 0, max: 9 }),
        max_tokens: fc.integer({ min: 1, max: 64 }),
      })
      .map(({ max_tokens, ...m }) => JSON.stringify({ ...validMessage, ...m, request: { prompt: "hi", max_tokens } }));
    await fc.assert(
      fc.asyncProperty(fc.array(forged, { minLength: 1, maxLength: 5 }), async (bodies) => {
        const before = memoryState(deps);
        const report = await processDelivery(deps, windowOf(bodies), options);
        expect(report.retry).toEqual([]);
        expect(memoryState(deps)).toEqual(before);
      }),
      fuzzParams(200),
    );
  });

  it("lets the dead-letter function take any foreign body without a throw or a write", async () => {
    const { deps } = await depsWithAJob();
    await fc.assert(
      fc.asyncProperty(foreignBody, fc.oneof(fc.integer({ min: 1, max: 10 }), fc.constantFrom(Number.NaN, 0)), async (body, receives) => {
        const before = memoryState(deps);
        await handleDeadLetter(deps, body, receives);
        expect(memoryState(deps)).toEqual(before);
      }),
      fuzzParams(500),
    );
  });
});
