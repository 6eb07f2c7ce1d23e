import fc from "fast-check";
import { BatchlineError, ValidationError } from "#shared/core/errors";

/**
 * Shared pieces of the property-based (fast-check) tests of every place input enters.
 *
 * Runs are reproducible: each property runs with a fixed seed unless FUZZ_SEED is set, and a
 * failure prints the seed and the counterexample path that replay it. FUZZ_RUNS multiplies the
 * number of runs (say FUZZ_RUNS=20 for a long local hunt).
 */
export function fuzzParams<T>(numRuns: number, seed = 20261127): fc.Parameters<T> {
  const fromEnv = process.env.FUZZ_SEED;
  const multiplier = Number(process.env.FUZZ_RUNS ?? "1");
  return {
    seed: fromEnv !== undefined && fromEnv !== "" ? Number(fromEnv) : seed,
    numRuns: Math.max(1, Math.round(numRuns * (Number.isFinite(multiplier) && multiplier > 0 ? multiplier : 1))),
    endOnFailure: true,
  };
}

/** One of our error classes. */
export type ErrorClass = abstract new (...args: never[]) => BatchlineError;

/** The one acceptable way for a parser to say no: our error, with a message that says what is wrong. */
export function expectOurError(error: unknown, kind: ErrorClass = ValidationError): asserts error is BatchlineError {
  if (!(error instanceof kind)) {
    throw new Error(`expected a ${kind.name}, got ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`, { cause: error });
  }
  if (error.message.trim() === "") throw new Error(`${error.name} with an empty message`);
  if (error instanceof ValidationError && error.field === "") {
    throw new Error(`ValidationError names an empty field: ${error.message}`);
  }
}

/** Runs `act`; returns what it returned, or the error it threw (which must be one of ours). */
export function outcomeOf<T>(act: () => T, kind: ErrorClass = ValidationError): { ok: true; value: T } | { ok: false; error: BatchlineError } {
  try {
    return { ok: true, value: act() };
  } catch (error) {
    expectOurError(error, kind);
    return { ok: false, error };
  }
}

/** Keys that have tripped JavaScript parsers before. */
export const prototypeKeys = ["__proto__", "constructor", "prototype", "toString", "valueOf", "hasOwnProperty", "__defineGetter__"] as const;

/** Strings at the edges: empty, whitespace, control and format characters, lone surrogates, BOMs, unicode, long. */
export const nastyString: fc.Arbitrary<string> = fc.oneof(
  { weight: 3, arbitrary: fc.string({ unit: "binary", maxLength: 24 }) },
  { weight: 2, arbitrary: fc.string({ unit: "grapheme", maxLength: 24 }) },
  {
    weight: 3,
    arbitrary: fc.string({
      unit: fc.constantFrom("\u0000", "\u0001", "\u001f", "\u007f", "\ud800", "\udfff", "\ufeff", "\u200b", "\u2028", "\u2029", "\r", "\n", "\t", " ", "é", "e\u0301", "💥", "\u{10ffff}", "\\", '"', "%", "#", "/", "?"),
      maxLength: 16,
    }),
  },
  {
    weight: 3,
    arbitrary: fc.constantFrom(
      "", " ", "\u0000", "\ufeff", "\r\n", "null", "undefined", "NaN", "-0", "1e309", "true", "[]", "{}", "%00", "%", "../../etc/passwd",
      "<script>alert(1)</script>", "'; DROP TABLE jobs; --", "job_", "batch_", "job#x", "llama-2-7b ", "LLAMA-2-7B", ...prototypeKeys,
    ),
  },
  { weight: 1, arbitrary: fc.integer({ min: 129, max: 4096 }).map((n) => "x".repeat(n)) },
  { weight: 1, arbitrary: fc.integer({ min: 600, max: 2048 }).map((n) => "é".repeat(n)) },
);

/** Numbers at the edges, as JavaScript values (NaN and the infinities cannot appear in JSON text). */
export const nastyNumber: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(0, -0, 1, -1, 0.5, 2, 9, 10, 2048, 2049, 3_600_001, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY,
    Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER + 2, Number.MIN_SAFE_INTEGER - 2, Number.MAX_VALUE, Number.MIN_VALUE, Number.EPSILON, 1e21, -1e21),
  fc.double(),
  fc.integer(),
);

/** Number tokens as they may appear in JSON text, some of them not JSON at all. */
export const numberToken: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom("1e309", "-1e309", "-0", "0.0", "1E2", "1e-400", "1.5", "01", "00", "+1", ".5", "5.", "0x10", "NaN", "Infinity", "-Infinity", "9007199254740993", "1e21"),
  fc.integer().map(String),
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((d) => JSON.stringify(d)),
);

/** Any JSON value, with nasty strings and prototype keys inside. */
export const junkJson: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constantFrom(null, true, false),
    nastyNumber.filter(Number.isFinite),
    nastyString,
    fc.array(tie("value"), { maxLength: 4 }),
    fc.array(fc.tuple(fc.oneof(nastyString, fc.constantFrom(...prototypeKeys)), tie("value")), { maxLength: 4 }).map((entries) => Object.fromEntries(entries)),
  ),
})).value;

/**
 * JSON text for an object built from `[key, value text]` pairs: duplicated keys, edge number
 * tokens and raw fragments go in as they are; the result may or may not parse.
 */
export function objectText(entries: readonly (readonly [string, string])[]): string {
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${v}`).join(",")}}`;
}

/** Text that is almost JSON, or JSON with surprises: BOMs, trailing garbage, truncation, comments. */
export function mangledJsonText(valid: string): fc.Arbitrary<string> {
  return fc.oneof(
    fc.constant(`\ufeff${valid}`),
    fc.constant(`${valid}${valid}`),
    fc.constant(`${valid},`),
    fc.constant(`${valid} // comment`),
    fc.nat({ max: Math.max(0, valid.length - 1) }).map((n) => valid.slice(0, n)),
    fc.tuple(fc.nat({ max: valid.length }), fc.constantFrom("\u0000", "'", "}", "{", "]", "\\", "\n", "\ud800", "NaN")).map(([at, junk]) => valid.slice(0, at) + junk + valid.slice(at)),
    fc.constant(valid.replaceAll('"', "'")),
  );
}

/** How an error message shows a client's key: a plain name as it is, anything else quoted. */
export const shownKey = (key: string): string =>
  /^[\w$-]+$/.test(key) ? key : JSON.stringify(key.length > 64 ? `${key.slice(0, 64)}…` : key).replace(/[\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16)}`);

/** Builds an object with these own entries, `__proto__` included as an own key (as JSON.parse does). */
export const ownObject = (entries: Iterable<readonly [string, unknown]>): Record<string, unknown> => Object.fromEntries(entries);

/** Whatever the test did, no prototype got polluted. */
export function expectPrototypesClean(): void {
  for (const key in {}) throw new Error(`Object.prototype was polluted with ${key}`);
  for (const key in []) throw new Error(`Array.prototype was polluted with ${key}`);
}

/** A route as the job arbitraries need it. */
export type RouteLimits = { readonly name: string; readonly maxNewTokens: number };

export const jobFields = ["model", "prompt", "messages", "max_tokens", "temperature", "top_p", "stop", "seed", "priority", "deadline", "idempotency_key", "metadata", "stream"] as const;
export type JobField = (typeof jobFields)[number];

const text = (maxLength: number) => fc.string({ unit: "grapheme", minLength: 1, maxLength });
const anyText = (maxLength: number) => fc.oneof(fc.string({ unit: "binary", maxLength }), fc.string({ unit: "grapheme", maxLength }), fc.string({ maxLength }));
const LAST_DEADLINE_MS = Date.parse("9999-12-30T00:00:00.000Z");

/** An ISO 8601 date-time with an offset for instant `ms` (Z, +00:00 or a real offset). */
const isoWithOffset = (ms: number, offsetMinutes: number | "Z") => {
  if (offsetMinutes === "Z") return new Date(ms).toISOString();
  const local = new Date(ms + offsetMinutes * 60_000).toISOString().slice(0, -1);
  const sign = offsetMinutes < 0 ? "-" : "+";
  const abs = Math.abs(offsetMinutes);
  return `${local}${sign}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
};
const offsets = fc.oneof(fc.constant("Z" as const), fc.constantFrom(0, 60, -300, 330, 345, -570, 840, -720));

/** Metadata keys: anything a client may send except `__proto__`, which a JavaScript object cannot hold as data. */
const metadataKey = fc.oneof(anyText(20), fc.constantFrom("", "constructor", "toString", "prototype", "hasOwnProperty", "a.b", "é")).filter((k) => k !== "__proto__");

/** A job every route accepts: the fields of the README, each present or not, at their edges. */
export function validJob(routes: readonly RouteLimits[], now: Date): fc.Arbitrary<Record<string, unknown>> {
  const route = fc.constantFrom(...routes);
  return route.chain((r) =>
    fc
      .record(
        {
          model: fc.constant(r.name),
          max_tokens: fc.oneof(fc.constantFrom(1, r.maxNewTokens), fc.integer({ min: 1, max: r.maxNewTokens })),
          temperature: fc.oneof(fc.constantFrom(0, -0, 2), fc.double({ min: 0, max: 2, noNaN: true })),
          top_p: fc.oneof(fc.constantFrom(1, Number.MIN_VALUE), fc.double({ min: Number.MIN_VALUE, max: 1, noNaN: true })),
          stop: fc.oneof(anyText(8), fc.array(anyText(8), { maxLength: 4 })),
          seed: fc.oneof(fc.constantFrom(0, -0, Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER), fc.maxSafeInteger()),
          priority: fc.integer({ min: 0, max: 9 }),
          deadline: fc.tuple(fc.integer({ min: now.getTime() + 1000, max: LAST_DEADLINE_MS }), offsets).map(([ms, offset]) => isoWithOffset(ms, offset)),
          idempotency_key: anyText(128).filter((k) => k.length >= 1 && k.length <= 128),
          metadata: fc.uniqueArray(fc.tuple(metadataKey, anyText(30)), { maxLength: 16, selector: ([k]) => k }).map((entries) => ownObject(entries)),
          // Every route of infra/routes.yml streams: none is only dynamic-batch.
          stream: fc.boolean(),
        },
        { requiredKeys: ["model", "max_tokens"] },
      )
      .chain((job) =>
        fc.oneof(
          text(80).map((prompt) => ({ ...job, prompt })),
          // Any conversation with a user turn: without one the rendered prompt is empty.
          fc
            .tuple(fc.array(fc.record({ role: fc.constantFrom("system", "user", "assistant"), content: anyText(40) }), { maxLength: 3 }), anyText(40), fc.nat())
            .map(([others, content, at]) => ({ ...job, messages: others.toSpliced(at % (others.length + 1), 0, { role: "user", content }) })),
        ),
      ),
  );
}

const notAString = fc.oneof(nastyNumber, fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 }), fc.constant({}));
const notANumber = fc.oneof(fc.string({ maxLength: 5 }), fc.boolean(), fc.constant(null), fc.constant([]), fc.constant({}), fc.constantFrom("1", "0", "1e3"));
const nonFinite = fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY);
const notAnInteger = fc.oneof(notANumber, nonFinite, fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)),
  fc.constantFrom(Number.MAX_SAFE_INTEGER + 2, Number.MIN_SAFE_INTEGER - 2, 1e21, -1e300, Number.MAX_VALUE));
const notAnObject = fc.oneof(nastyNumber, fc.boolean(), fc.constant(null), fc.array(fc.string(), { maxLength: 2 }), nastyString);

/** A value `field` must refuse, whatever the rest of the job says. */
export function invalidValueFor(field: JobField, routes: readonly RouteLimits[], now: Date): fc.Arbitrary<unknown> {
  const models = new Set(routes.map((r) => r.name));
  const maxNewTokens = Math.min(...routes.map((r) => r.maxNewTokens));
  switch (field) {
    case "model":
      return fc.oneof(notAString, fc.constant(""), nastyString.filter((s) => !models.has(s)));
    case "prompt":
      return fc.oneof(notAString, fc.constant(""));
    case "messages": {
      const badMessage = fc.oneof(
        notAnObject,
        fc.record({ role: fc.oneof(notAString, nastyString.filter((s) => !["system", "user", "assistant"].includes(s))), content: fc.constant("x") }),
        fc.record({ role: fc.constant("user"), content: notAString }),
        fc.record({ content: fc.constant("x") }),
        fc.constantFrom(...prototypeKeys, "name").map((extra) => ownObject([["role", "user"], ["content", "x"], [extra, 1]])),
      );
      const withoutUser = fc.array(fc.record({ role: fc.constantFrom("system", "assistant"), content: anyText(10) }), { minLength: 1, maxLength: 3 });
      return fc.oneof(notAnObject, fc.constant({}), fc.constant([]), withoutUser,
        fc.tuple(fc.array(fc.constant({ role: "user", content: "ok" }), { maxLength: 2 }), badMessage).map(([good, bad]) => [...good, bad]));
    }
    case "max_tokens":
      // No route takes more than its max_new_tokens; a job's route is its own, so exceed every route's.
      return fc.oneof(notAnInteger, fc.integer({ min: -1000, max: 0 }), fc.integer({ min: Math.max(...routes.map((r) => r.maxNewTokens)) + 1, max: 10 ** 9 }), fc.constant(maxNewTokens * 1000));
    case "temperature":
      return fc.oneof(notANumber, nonFinite, fc.double({ max: -Number.MIN_VALUE, noNaN: true, noDefaultInfinity: true }), fc.double({ min: 2.000001, noNaN: true, noDefaultInfinity: true }));
    case "top_p":
      return fc.oneof(notANumber, nonFinite, fc.double({ max: 0, noNaN: true, noDefaultInfinity: true }), fc.double({ min: 1.000001, noNaN: true, noDefaultInfinity: true }));
    case "stop":
      return fc.oneof(nastyNumber, fc.boolean(), fc.constant(null), fc.constant({}),
        fc.tuple(fc.array(fc.string(), { maxLength: 2 }), notAString).map(([ok, bad]) => [...ok, bad]),
        fc.array(fc.string(), { minLength: 5, maxLength: 9 }));
    case "seed":
      return notAnInteger;
    case "priority":
      return fc.oneof(notAnInteger, fc.integer({ max: -1 }), fc.integer({ min: 10 }));
    case "deadline":
      return fc.oneof(
        notAString,
        nastyString.filter((s) => !/^\d{4}-\d\d-\d\dT/.test(s)),
        fc.integer({ min: Date.parse("0001-01-01T00:00:00Z"), max: now.getTime() }).map((ms) => new Date(ms).toISOString()),
        fc.constantFrom("2027-01-01", "2027-01-01T00:00:00", "2027-02-30T00:00:00Z", "2027-13-01T00:00:00Z", "2027-01-01T25:00:00Z", "2027-01-01 00:00:00Z", "tomorrow", "+275760-09-13T00:00:00Z"),
      );
    case "idempotency_key":
      return fc.oneof(notAString, fc.constant(""), fc.integer({ min: 129, max: 5000 }).map((n) => "k".repeat(n)));
    case "stream":
      return fc.oneof(nastyNumber, fc.constantFrom("true", "false", 0, 1), fc.constant(null), fc.constant({}), fc.constant([]), nastyString);
    case "metadata":
      return fc.oneof(
        notAnObject,
        fc.tuple(metadataKey, fc.oneof(notAString, fc.constant({ nested: "x" }))).map(([k, v]) => ownObject([[k, v]])),
        fc.integer({ min: 17, max: 40 }).map((n) => ownObject(Array.from({ length: n }, (_, i) => [`k${i}`, "v"]))),
        fc.oneof(fc.constant("x"), fc.constant({ polluted: "yes" })).map((v) => ownObject([["ok", "v"], ["__proto__", v]])),
      );
  }
}

/** A valid job with `fields` set to values they refuse. */
export function jobWithInvalid(routes: readonly RouteLimits[], now: Date, count: { min: number; max: number } = { min: 1, max: 1 }) {
  return fc
    .tuple(validJob(routes, now), fc.shuffledSubarray([...jobFields], { minLength: count.min, maxLength: count.max }))
    .chain(([job, fields]) =>
      fc.tuple(...fields.map((f) => invalidValueFor(f, routes, now).map((v) => [f, v] as const))).map((bad) => ({
        job: ownObject([...Object.entries(job), ...bad].filter(([k], i, all) => all.findLastIndex(([k2]) => k2 === k) === i)),
        fields: fields as JobField[],
      })),
    );
}

/** A valid job with a key no job has; the key (prototype keys among them) is what the error must name. */
export function jobWithUnknownKey(routes: readonly RouteLimits[], now: Date) {
  const known = new Set<string>(jobFields);
  return fc
    .tuple(validJob(routes, now), fc.oneof(fc.constantFrom(...prototypeKeys, "Model", "max-tokens", "n", "stream"), nastyString).filter((k) => !known.has(k)), junkJson)
    .map(([job, key, value]) => ({ job: ownObject([...Object.entries(job), [key, value]]), key }));
}

const NOT_STATE = new Set(["catalog", "clock", "ids", "logger", "sleep", "random"]);

/**
 * Everything the in-memory ports of `memoryDeps()` hold (stores, queue, ledger, notifier posts,
 * GPU calls), as plain data to compare before and after: a rejected input must leave it as it was.
 */
export function memoryState(deps: object, exclude: readonly string[] = []): unknown {
  const out: Record<string, unknown> = {};
  for (const [name, port] of Object.entries(deps)) {
    if (NOT_STATE.has(name) || exclude.includes(name) || typeof port !== "object" || port === null) continue;
    const data = Object.entries(port).filter(([, v]) => typeof v !== "function" && !(v instanceof Promise));
    out[name] = structuredClone(Object.fromEntries(data));
  }
  return out;
}
