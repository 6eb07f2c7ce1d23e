import { convertToAttr } from "@aws-sdk/util-dynamodb";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { cancelJob } from "#shared/app/cancel";
import { batchResults, getBatch, getJob } from "#shared/app/queries";
import { NotFoundError, ValidationError } from "#shared/core/errors";
import { decodeCursor, encodeCursor } from "#shared/aws/cursor";
import { defaultCatalog, memoryDeps } from "../../helpers/fakes.ts";
import { expectOurError, fuzzParams, junkJson, memoryState, nastyString, numberToken, outcomeOf, prototypeKeys } from "../../helpers/fuzz.ts";

// Ids in paths and frames, and page cursors in query strings, are the caller's text: an odd one
// is a 404 or a 400 on the cursor, never a read DynamoDB refuses or a key the SDK cannot send.
const catalog = defaultCatalog();
const oddId = fc.oneof(nastyString, fc.integer({ min: 257, max: 20_000 }).map((n) => "j".repeat(n)), fc.integer({ min: 700, max: 3000 }).map((n) => "é".repeat(n)));

describe("ids that name nothing", () => {
  it("are not found, and an id no API hands out (over 256 characters) is not even looked up", async () => {
    const deps = memoryDeps(catalog);
    let reads = 0;
    const jobsGet = deps.jobs.get.bind(deps.jobs);
    const batchesGet = deps.batches.get.bind(deps.batches);
    deps.jobs.get = (id) => ((reads += id.length > 256 ? 1 : 0), jobsGet(id));
    deps.batches.get = (id) => ((reads += id.length > 256 ? 1 : 0), batchesGet(id));
    await fc.assert(
      fc.asyncProperty(oddId, async (id) => {
        const before = memoryState(deps);
        for (const act of [() => getJob(deps, "acme", id), () => getBatch(deps, "acme", id), () => cancelJob(deps, "acme", id), () => batchResults(deps, "acme", id, { limit: 10 })]) {
          const error = await act().then(() => undefined, (e: unknown) => e);
          expectOurError(error, NotFoundError);
        }
        expect(memoryState(deps)).toEqual(before);
      }),
      fuzzParams(300),
    );
    expect(reads).toBe(0);
  });
});

/** The kind of key DynamoDB hands back as LastEvaluatedKey. */
const lastKey = fc.dictionary(fc.string({ minLength: 1, maxLength: 12 }), fc.oneof(fc.string({ unit: "binary", maxLength: 30 }), fc.maxSafeInteger()), { minKeys: 1, maxKeys: 4, noNullPrototype: true });

describe("page cursors under fuzzing", () => {
  it("give back the key they were made from", () => {
    fc.assert(
      fc.property(lastKey, (key) => {
        expect(decodeCursor(encodeCursor(key))).toEqual(key);
      }),
      fuzzParams(500),
    );
  });

  it("read any text as a key the SDK can send, or a 400 on the cursor", () => {
    const cursors = fc.oneof(
      nastyString,
      fc.base64String(),
      junkJson.map((v) => Buffer.from(JSON.stringify(v) ?? "").toString("base64url")),
      fc.tuple(fc.constantFrom("tenant", "batch_id", "batch_line", ...prototypeKeys), numberToken).map(([k, n]) => Buffer.from(`{"${k}":${n}}`).toString("base64url")),
      fc.tuple(fc.constantFrom(...prototypeKeys), nastyString).map(([k, v]) => Buffer.from(JSON.stringify({ batch_id: "b", [k]: v })).toString("base64url")),
      lastKey.map((k) => encodeCursor(k) ?? "").map((c) => `${c}x`),
    );
    fc.assert(
      fc.property(cursors, (cursor) => {
        const outcome = outcomeOf(() => decodeCursor(cursor));
        // The document client marshals an ExclusiveStartKey value by value, as here.
        if (outcome.ok) for (const value of Object.values(outcome.value ?? {})) expect(() => convertToAttr(value)).not.toThrow();
        else expect(outcome.error).toMatchObject({ field: "cursor", message: "cursor: not a cursor this API returned" });
      }),
      fuzzParams(1000),
    );
  });

  // The first three the SDK refused to send with a plain Error, which answered 500; the others
  // went to DynamoDB, which refused them.
  it.each(['{"tenant":1e21}', '{"batch_id":"b","batch_line":1e309}', '{"batch_line":-9007199254740993}', '{"tenant":{"S":"x"}}', '{"tenant":["a"]}', '{"tenant":null}', '{"tenant":true}'])(
    "refuses %s without sending it",
    (json) => {
      const outcome = outcomeOf(() => decodeCursor(Buffer.from(json).toString("base64url")));
      expect(outcome.ok ? "accepted" : (outcome.error as ValidationError).field).toBe("cursor");
    },
  );
});
