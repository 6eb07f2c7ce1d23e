import fc from "fast-check";
import type { APIGatewayProxyEventV2 } from "aws-lambda";
import { describe, expect, it } from "vitest";
import { submitJob } from "#shared/app/submit";
import { ValidationError } from "#shared/core/errors";
import { checkJob } from "#shared/core/submission";
import { tokenCounter } from "#shared/core/tokens";
import { bodyText, jsonBody } from "#shared/http";
import { defaultCatalog, memoryDeps } from "../../helpers/fakes.ts";
import {
  expectOurError, expectPrototypesClean, fuzzParams, jobFields, jobWithInvalid, jobWithUnknownKey, junkJson, mangledJsonText, memoryState, nastyString,
  numberToken, ownObject, objectText, outcomeOf, shownKey, validJob, type RouteLimits,
} from "../../helpers/fuzz.ts";

// checkJob is where every job enters (POST /v1/jobs, WebSocket submit, each line of a batch file).
const catalog = defaultCatalog();
const routes: RouteLimits[] = [...catalog.routes.values()].map((r) => ({ name: r.name, maxNewTokens: r.limits.max_new_tokens }));
const now = new Date("2026-11-27T12:00:00.000Z");

const httpEvent = (body: string, isBase64Encoded = false) => ({ body, isBase64Encoded }) as APIGatewayProxyEventV2;

/** The field an error names, down to its first segment ("messages.0.role" is about "messages"). */
const topField = (error: ValidationError) => error.field?.split(".")[0];

describe("checkJob under fuzzing", () => {
  it("answers any value with a job or a ValidationError that says what is wrong", () => {
    const anyValue = fc.oneof(
      junkJson,
      fc.anything({ withBoxedValues: true, withMap: true, withSet: true, withDate: true, withNullPrototype: true, withTypedArray: true, withSparseArray: true, withBigInt: true }),
      jobWithInvalid(routes, now, { min: 1, max: 4 }).map((j) => j.job),
    );
    fc.assert(
      fc.property(anyValue, (raw) => {
        const outcome = outcomeOf(() => checkJob(raw, catalog, now));
        if (!outcome.ok) expect(outcome.error.message).toMatch(/^\S.*?: \S/);
        expectPrototypesClean();
      }),
      fuzzParams(1500),
    );
  });

  it("accepts every valid job as it was sent", () => {
    fc.assert(
      fc.property(validJob(routes, now), (job) => {
        const checked = checkJob(job, catalog, now);
        expect(checked.request).toEqual(job);
        expect(checked.route.name).toBe(job.model);
        expect(checked.promptTokens).toBeGreaterThan(0);
      }),
      fuzzParams(800),
    );
  });

  it("refuses a job with one wrong field, naming that field", () => {
    fc.assert(
      fc.property(jobWithInvalid(routes, now), ({ job, fields }) => {
        const outcome = outcomeOf(() => checkJob(job, catalog, now));
        expect(outcome.ok, `accepted ${fields[0]}: ${fc.stringify(job[fields[0] as string])}`).toBe(false);
        if (outcome.ok) return;
        const error = outcome.error as ValidationError;
        expect(topField(error)).toBe(fields[0]);
        expect(error.message.startsWith(`${fields[0]}`)).toBe(true);
        expect(error.status === 400 || error.status === 413).toBe(true);
      }),
      fuzzParams(1500),
    );
  });

  it("refuses a job with several wrong fields, naming one of them", () => {
    fc.assert(
      fc.property(jobWithInvalid(routes, now, { min: 2, max: jobFields.length }), ({ job, fields }) => {
        const outcome = outcomeOf(() => checkJob(job, catalog, now));
        expect(outcome.ok).toBe(false);
        if (!outcome.ok) expect([...fields, "prompt"]).toContain(topField(outcome.error as ValidationError));
      }),
      fuzzParams(500),
    );
  });

  it("refuses a key no job has, prototype keys included, naming the key", () => {
    fc.assert(
      fc.property(jobWithUnknownKey(routes, now), ({ job, key }) => {
        const outcome = outcomeOf(() => checkJob(job, catalog, now));
        expect(outcome.ok).toBe(false);
        if (outcome.ok) return;
        expect(outcome.error.message).toBe(`${shownKey(key)}: is not a known field`);
        // An empty key cannot be a path; the message names it all the same.
        expect((outcome.error as ValidationError).field).toBe(key === "" ? undefined : key);
        expectPrototypesClean();
      }),
      fuzzParams(500),
    );
  });

  it("reads JSON text with duplicated keys, edge numbers, BOMs and junk as a job or a 400 on the body", () => {
    const fieldText = fc.oneof(
      validJob(routes, now).map((job) => Object.entries(job).map(([k, v]) => [k, JSON.stringify(v)] as const)),
      fc.constant([["model", '"llama-2-7b"'], ["prompt", '"hi"'], ["max_tokens", "4"]] as const),
    );
    const entries = fc
      .tuple(
        fieldText,
        fc.array(fc.tuple(fc.constantFrom(...jobFields, "__proto__", "constructor"), fc.oneof(numberToken, junkJson.map((v) => JSON.stringify(v) ?? "null"))), { maxLength: 4 }),
      )
      .chain(([base, extra]) => fc.shuffledSubarray([...base, ...extra, ...base.slice(0, 2)], { minLength: 0 }));
    const bodies = fc.oneof(
      entries.map(objectText),
      entries.map(objectText).chain(mangledJsonText),
      nastyString,
      fc.string({ unit: "binary", maxLength: 60 }).map((s) => Buffer.from(s).toString("base64")).map((b) => ({ b64: b })),
      fc.uint8Array({ maxLength: 60 }).map((bytes) => ({ b64: Buffer.from(bytes).toString("base64") })),
    );
    fc.assert(
      fc.property(bodies, (body) => {
        const event = typeof body === "string" ? httpEvent(body) : httpEvent(body.b64, true);
        const parsed = outcomeOf(() => jsonBody(event));
        if (!parsed.ok) {
          expect((parsed.error as ValidationError).field).toBe("body");
          return;
        }
        outcomeOf(() => checkJob(parsed.value, catalog, now));
        expectPrototypesClean();
      }),
      fuzzParams(1500),
    );
  });

  it("writes nothing and enqueues nothing for a rejected job", async () => {
    const deps = memoryDeps(catalog);
    deps.clock.now = () => now;
    await submitJob(deps, "acme", { model: "llama-2-7b", prompt: "already here", max_tokens: 4, idempotency_key: "k1" });
    const rejected = fc.oneof(jobWithInvalid(routes, now, { min: 1, max: 3 }).map((j) => j.job), jobWithUnknownKey(routes, now).map((j) => j.job), junkJson);
    await fc.assert(
      fc.asyncProperty(rejected, async (raw) => {
        const before = memoryState(deps);
        const error = await submitJob(deps, "acme", raw).then(() => undefined, (e: unknown) => e);
        expectOurError(error);
        expect(memoryState(deps)).toEqual(before);
      }),
      fuzzParams(500),
    );
  });
});

describe("checkJob: inputs fuzzing found", () => {
  it.each([
    ["", '"": is not a known field', undefined],
    ["\r\n", '"\\r\\n": is not a known field', "\r\n"],
    ["a b", '"a b": is not a known field', "a b"],
    ["a ".repeat(50), `"${"a ".repeat(32)}…": is not a known field`, "a ".repeat(50)],
  ])("names an unknown key %j readably, quoted", (key, message, field) => {
    const outcome = outcomeOf(() => checkJob(ownObject([["model", "llama-2-7b"], ["prompt", "x"], ["max_tokens", 1], [key, 1]]), catalog, now));
    expect(outcome.ok ? "accepted" : { message: outcome.error.message, field: (outcome.error as ValidationError).field }).toEqual({ message, field });
  });

  it("refuses messages without a user turn (the system text alone rendered to an empty prompt)", () => {
    for (const messages of [[{ role: "system", content: "be brief" }], [{ role: "assistant", content: "hi" }, { role: "system", content: "" }]]) {
      const outcome = outcomeOf(() => checkJob({ model: "llama-2-7b", messages, max_tokens: 4 }, catalog, now));
      expect(outcome.ok ? "accepted" : outcome.error.message).toBe("messages: must include a user message");
    }
  });

  it("refuses a metadata key __proto__ instead of dropping it, whatever its value", () => {
    for (const text of ['{"__proto__":"x"}', '{"ok":"v","__proto__":{"polluted":"yes"}}']) {
      const raw = { model: "llama-2-7b", prompt: "x", max_tokens: 1, metadata: JSON.parse(text) };
      const outcome = outcomeOf(() => checkJob(raw, catalog, now));
      expect(outcome.ok).toBe(false);
      if (!outcome.ok) expect(outcome.error).toMatchObject({ field: "metadata.__proto__", message: "metadata.__proto__: is not allowed as a metadata key" });
    }
    expectPrototypesClean();
  });

  it("knows a lower bound on a text's tokens without counting: no token stands for more than maxTokenLength code units", async () => {
    const { default: llama2 } = await import("llama-tokenizer-js");
    const { createRequire } = await import("node:module");
    const llama3 = createRequire(import.meta.url)("llama3-tokenizer-js").default as { vocabById: string[] };
    const longest = (vocab: readonly string[]) => vocab.reduce((most, t) => Math.max(most, t?.length ?? 0), 0);
    expect(longest((llama2 as unknown as { vocabById: string[] }).vocabById)).toBe(tokenCounter("llama2").maxTokenLength);
    // Byte-level: each character of a llama3 vocabulary entry is one byte.
    expect(longest(llama3.vocabById)).toBe(tokenCounter("llama3").maxTokenLength);
    fc.assert(
      fc.property(fc.constantFrom("llama2" as const, "llama3" as const), fc.oneof(nastyString, fc.string({ unit: fc.constantFrom(" ", "-", "=", "\n", "x"), maxLength: 3000 })), (name, text) => {
        const counter = tokenCounter(name);
        expect(counter.countPrompt(text)).toBeGreaterThanOrEqual(Math.ceil(text.length / counter.maxTokenLength));
      }),
      fuzzParams(300),
    );
  });

  it("refuses a prompt far over the token limit without counting its tokens", () => {
    // Counting a 6 MB prompt took about a minute of CPU, long past any request deadline.
    const counter = tokenCounter("llama2");
    const count = counter.countPrompt;
    let counted = 0;
    counter.countPrompt = (text) => {
      counted += text.length;
      return count(text);
    };
    try {
      const prompt = "x".repeat(6 * 1024 * 1024 - 1024);
      const outcome = outcomeOf(() => checkJob({ model: "llama-2-7b", prompt, max_tokens: 1 }, catalog, now));
      expect(outcome.ok).toBe(false);
      if (!outcome.ok) expect(outcome.error.message).toMatch(/^prompt: at least \d+ tokens is over the 3072-token prompt limit of model llama-2-7b$/);
      expect(counted).toBe(0);
    } finally {
      counter.countPrompt = count;
    }
  });
});

describe("HTTP bodies as the gateway hands them over: inputs fuzzing found", () => {
  // serverless-offline parses a JSON body and passes one that parsed to false or 0 on as that
  // value: POST /v1/jobs, /v1/batches and PUT settings with the body `false` or `0` answered 500.
  it.each<[unknown, string]>([[false, "false"], [0, "0"], [null, ""], [undefined, ""], ["text", "text"]])("reads a body of %j as the text %j", (body, text) => {
    expect(bodyText({ body } as unknown as APIGatewayProxyEventV2)).toBe(text);
  });

  it("refuses a JSON body of false or 0 with a 400 on the body", () => {
    for (const body of [false, 0]) {
      const parsed = jsonBody({ body } as unknown as APIGatewayProxyEventV2);
      const outcome = outcomeOf(() => checkJob(parsed, catalog, now));
      expect(outcome.ok ? "accepted" : outcome.error.message).toBe("body: must be a JSON object");
    }
  });
});
