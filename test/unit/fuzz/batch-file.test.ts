import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { submitBatch } from "#shared/app/submit";
import { MAX_BATCH_LINES, parseBatchFile } from "#shared/core/batch-file";
import type { ValidationError } from "#shared/core/errors";
import { defaultCatalog, memoryDeps } from "../../helpers/fakes.ts";
import {
  expectOurError, expectPrototypesClean, fuzzParams, jobWithInvalid, jobWithUnknownKey, junkJson, mangledJsonText, memoryState, nastyString, outcomeOf, prototypeKeys,
  validJob, type RouteLimits,
} from "../../helpers/fuzz.ts";

// A batch file is validated whole before any of it is stored; one bad line rejects it, by number.
const catalog = defaultCatalog();
const routes: RouteLimits[] = [...catalog.routes.values()].map((r) => ({ name: r.name, maxNewTokens: r.limits.max_new_tokens }));
const now = new Date("2026-11-27T12:00:00.000Z");

const customId = fc.oneof(fc.string({ unit: "binary", minLength: 1, maxLength: 20 }), fc.constantFrom(...prototypeKeys, "0", " ", "\ufeff"))  // Not a field name, so that a line's first occurrence of the id, quoted, is its custom_id.
  .filter((s) => s.length >= 1 && s.length <= 64 && !["custom_id", "body", "method", "url", "POST", "/v1/jobs"].includes(s));

/** A request line: custom_id and body, OpenAI's method and url sometimes, blanks around the JSON tokens sometimes. */
const requestLine = (id: string, body: unknown) =>
  fc.tuple(fc.boolean(), fc.oneof({ weight: 9, arbitrary: fc.constantFrom("", " ", "\t", "   ") }, { weight: 1, arbitrary: fc.constant(" ".repeat(20_000)) })).map(([openAi, pad]) => {
    const fields = openAi ? { custom_id: id, method: "POST", url: "/v1/jobs", body } : { custom_id: id, body };
    return `${pad}${JSON.stringify(fields, null, pad === "" ? undefined : 1).replaceAll("\n", "")}${pad}`;
  });

/** What goes between request lines: the line ending, and sometimes blank or whitespace-only lines. */
const separator = fc.tuple(fc.constantFrom("\n", "\r\n"), fc.array(fc.constantFrom("", " ", "\t", "\r", "\ufeff", "  \r"), { maxLength: 2 })).map(([eol, blanks]) =>
  [eol, ...blanks.map((b) => `${b}${eol}`)].join(""),
);

type File = { text: string; ids: string[]; lineOf: number[] };

/** Joins lines into a file and remembers the physical line (1-based, as the parser counts) of each. */
function assemble(lines: readonly string[], seps: readonly string[], bom: boolean, trailing: string): File {
  let text = bom ? "\ufeff" : "";
  const lineOf: number[] = [];
  lines.forEach((l, i) => {
    if (i > 0) text += seps[i - 1] ?? "\n";
    lineOf.push(text.split("\n").length);
    text += l;
  });
  return { text: text + trailing, ids: [], lineOf };
}

/** A valid batch file: unique custom ids, valid jobs, any of the accepted layouts. */
const validFile: fc.Arbitrary<File> = fc
  .uniqueArray(customId, { minLength: 1, maxLength: 8 })
  .chain((ids) =>
    fc.tuple(
      fc.constant(ids),
      fc.tuple(...ids.map((id) => validJob(routes, now).chain((job) => requestLine(id, job)))),
      fc.array(separator, { minLength: ids.length, maxLength: ids.length }),
      fc.boolean(),
      fc.constantFrom("", "\n", "\r\n", "\n\n", " \n"),
    ),
  )
  .map(([ids, lines, seps, bom, trailing]) => ({ ...assemble(lines, seps, bom, trailing), ids }));

/** A line that cannot be accepted, and what must make it so. */
const badLine = (id: string): fc.Arbitrary<string> =>
  fc.oneof(
    nastyString.filter((s) => s.trim() !== "" && !s.includes("\n")),
    junkJson.map((v) => JSON.stringify(v) ?? "null").filter((s) => !s.includes("\n")),
    jobWithInvalid(routes, now, { min: 1, max: 3 }).map(({ job }) => JSON.stringify({ custom_id: id, body: job })),
    jobWithUnknownKey(routes, now).map(({ job }) => JSON.stringify({ custom_id: id, body: job })),
    validJob(routes, now).chain((job) =>
      fc.oneof(
        fc.constant(JSON.stringify({ custom_id: id })),
        fc.constant(JSON.stringify({ body: job })),
        fc.constant(JSON.stringify({ custom_id: "", body: job })),
        fc.constant(JSON.stringify({ custom_id: "c".repeat(65), body: job })),
        fc.constant(JSON.stringify({ custom_id: id, method: "GET", body: job })),
        fc.constant(JSON.stringify({ custom_id: id, url: "/v1/chat/completions", body: job })),
        fc.oneof(fc.constant(1), fc.constant(null), fc.constant([id])).map((cid) => JSON.stringify({ custom_id: cid, body: job })),
        fc.constantFrom(...prototypeKeys, "extra").map((k) => `{"custom_id":${JSON.stringify(id)},"body":${JSON.stringify(job)},${JSON.stringify(k)}:{}}`),
        mangledJsonText(JSON.stringify({ custom_id: id, body: job })).filter((s) => {
          try {
            JSON.parse(s.trim());
            return false;
          } catch {
            // Not JSON, and not blank either: a blank line is skipped, not refused.
            return !s.includes("\n") && s.trim() !== "";
          }
        }),
      ),
    ),
  );

function expectBatchError(error: ValidationError): void {
  expect(error.message).toMatch(/^(line \d+: \S|batch file )/);
  expect(error.field === "body" || /^line \d+/.test(error.field ?? "")).toBe(true);
}

describe("parseBatchFile under fuzzing", () => {
  it("answers any text with the lines or a ValidationError naming the line", () => {
    const texts = fc.oneof(
      nastyString,
      fc.array(fc.oneof(nastyString, junkJson.map((v) => JSON.stringify(v) ?? "")), { maxLength: 6 }).chain((ls) => separator.map((sep) => ls.join(sep))),
      validFile.chain((f) => mangledJsonText(f.text)),
      fc.string({ unit: "binary", maxLength: 200 }),
    );
    fc.assert(
      fc.property(texts, (text) => {
        const outcome = outcomeOf(() => parseBatchFile(text, catalog, now));
        if (!outcome.ok) expectBatchError(outcome.error as ValidationError);
        expectPrototypesClean();
      }),
      fuzzParams(400),
    );
  });

  it("accepts every valid file, with CRLF or LF, blank lines, a BOM and long lines, keeping order and line numbers", () => {
    fc.assert(
      fc.property(validFile, (file) => {
        const lines = parseBatchFile(file.text, catalog, now);
        expect(lines.map((l) => l.custom_id)).toEqual(file.ids);
        expect(lines.map((l) => l.line)).toEqual(file.lineOf);
      }),
      fuzzParams(150),
    );
  });

  it("rejects a file with one bad line, naming that line", () => {
    const withBadLine = validFile.chain((file) =>
      fc.nat({ max: file.ids.length - 1 }).chain((at) =>
        badLine(`bad-${at}`).map((bad) => {
          const physical = file.text.split("\n");
          const index = (file.lineOf[at] ?? 1) - 1;
          const original = physical[index] ?? "";
          // Keep the line's own CR, so that the bad line sits on the same physical line.
          physical[index] = `${at === 0 && file.text.startsWith("\ufeff") ? "\ufeff" : ""}${bad}${original.endsWith("\r") ? "\r" : ""}`;
          return { text: physical.join("\n"), line: index + 1, bad };
        }),
      ),
    );
    fc.assert(
      fc.property(withBadLine, ({ text, line }) => {
        const outcome = outcomeOf(() => parseBatchFile(text, catalog, now));
        expect(outcome.ok).toBe(false);
        if (outcome.ok) return;
        const error = outcome.error as ValidationError;
        expectBatchError(error);
        expect(error.message.startsWith(`line ${line}: `)).toBe(true);
        expect(error.field === `line ${line}` || error.field?.startsWith(`line ${line}.`)).toBe(true);
      }),
      fuzzParams(300),
    );
  });

  it("rejects a custom_id used twice at its second line", () => {
    const duplicated = validFile.filter((f) => f.ids.length >= 2).chain((file) =>
      fc.tuple(fc.nat({ max: file.ids.length - 2 }), fc.nat()).map(([first, k]) => {
        const second = first + 1 + (k % (file.ids.length - first - 1));
        const physical = file.text.split("\n");
        const index = (file.lineOf[second] ?? 1) - 1;
        const id = file.ids[first] as string;
        physical[index] = (physical[index] ?? "").replace(JSON.stringify(file.ids[second]), JSON.stringify(id));
        return { text: physical.join("\n"), line: index + 1, id };
      }),
    );
    fc.assert(
      fc.property(duplicated, ({ text, line, id }) => {
        const outcome = outcomeOf(() => parseBatchFile(text, catalog, now));
        expect(outcome.ok).toBe(false);
        if (!outcome.ok) expect(outcome.error.message).toBe(`line ${line}: custom_id "${id}" appears twice`);
      }),
      fuzzParams(100),
    );
  });

  it("writes nothing and enqueues nothing for a rejected file", async () => {
    const deps = memoryDeps(catalog);
    deps.clock.now = () => now;
    await submitBatch(deps, "acme", JSON.stringify({ custom_id: "kept", body: { model: "llama-2-7b", prompt: "hi", max_tokens: 2 } }));
    const rejected = fc.oneof(
      validFile.chain((f) => badLine("x").map((bad) => `${f.text}\n${bad}`)),
      nastyString,
      fc.constantFrom("", "\n\n", "\r\n", "\ufeff"),
    );
    await fc.assert(
      fc.asyncProperty(rejected, async (text) => {
        const before = memoryState(deps);
        const error = await submitBatch(deps, "acme", text).then(() => undefined, (e: unknown) => e);
        expectOurError(error);
        expect(memoryState(deps)).toEqual(before);
      }),
      fuzzParams(300),
    );
  });
});

describe("parseBatchFile: edges kept as cases", () => {
  it("counts lines over the limit before parsing any, with 413", () => {
    const outcome = outcomeOf(() => parseBatchFile("{}\r\n".repeat(MAX_BATCH_LINES + 1), catalog, now));
    expect(outcome.ok).toBe(false);
    if (!outcome.ok) expect(outcome.error).toMatchObject({ status: 413, field: "body" });
  });

  it("reads CR-only line endings as one line that is not JSON", () => {
    const text = ['{"custom_id":"a","body":{"model":"llama-2-7b","prompt":"x","max_tokens":1}}', '{"custom_id":"b","body":{"model":"llama-2-7b","prompt":"x","max_tokens":1}}'].join("\r");
    const outcome = outcomeOf(() => parseBatchFile(text, catalog, now));
    expect(outcome.ok ? "accepted" : outcome.error.message).toBe("line 1: not valid JSON");
  });
});
