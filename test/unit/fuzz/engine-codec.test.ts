import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { decodeResponse, type GenerationOutput } from "#shared/core/engine-codec";
import { ModelRejectedError } from "#shared/core/errors";
/** The engines whose bodies this fuzzes, each in its default format; TGI and the chat format are pinned by fixtures (codecs.test.ts). */
const fuzzedEngines = ["lmi-rolling", "lmi-dynamic", "vllm-openai"] as const;
type EngineMode = (typeof fuzzedEngines)[number];
import { fuzzParams, junkJson, mangledJsonText, nastyNumber, nastyString, numberToken, outcomeOf } from "../../helpers/fuzz.ts";
import { codecTarget } from "../../helpers/codec-targets.ts";

// What a model container answers is input too: a body that is not what the engine format
// promises must be a ModelRejectedError that says what was wrong, never a crash.
const countWords = (text: string) => (text === "" ? 0 : text.split(" ").length);
const engine = fc.constantFrom(...fuzzedEngines);

type Generation = { text: string; details?: { finish_reason: string; generated_tokens: number } | undefined };

const generation: fc.Arbitrary<Generation> = fc.record(
  {
    text: fc.oneof(nastyString, fc.string({ unit: "binary", maxLength: 40 })),
    details: fc.record({
      finish_reason: fc.oneof(fc.constantFrom("length", "stop", "eos_token", "stop_sequence", ""), nastyString),
      generated_tokens: fc.oneof(fc.constantFrom(0, 1, 2048), fc.nat()),
    }),
  },
  { requiredKeys: ["text"] },
);

/** The body an engine sends for these generations, and the outputs it must decode to. */
function encode(mode: EngineMode, generations: readonly Generation[]): { body: string; outputs: GenerationOutput[] } {
  const lmi = (g: Generation) => ({ generated_text: g.text, ...(g.details ? { details: g.details } : {}) });
  const output = (g: Generation): GenerationOutput => ({
    text: g.text,
    completion_tokens: g.details?.generated_tokens ?? countWords(g.text),
    finish_reason: g.details?.finish_reason === "length" ? "length" : "stop",
  });
  if (mode === "lmi-rolling") return { body: JSON.stringify(lmi(generations[0] as Generation)), outputs: [output(generations[0] as Generation)] };
  if (mode === "lmi-dynamic") return { body: JSON.stringify(generations.map(lmi)), outputs: generations.map(output) };
  // vLLM: one choice per call; usage counts that choice.
  const g = generations[0] as Generation;
  const body = {
    id: "cmpl-1",
    object: "text_completion",
    choices: [{ index: 0, text: g.text, finish_reason: g.details?.finish_reason ?? null, logprobs: null }],
    ...(g.details ? { usage: { prompt_tokens: 3, completion_tokens: g.details.generated_tokens, total_tokens: 3 + g.details.generated_tokens } } : {}),
  };
  return { body: JSON.stringify(body), outputs: [{ ...output(g), finish_reason: g.details?.finish_reason === "length" ? "length" : "stop" }] };
}

const validResponse = engine.chain((mode) =>
  fc.array(generation, { minLength: 1, maxLength: mode === "lmi-dynamic" ? 6 : 1 }).map((gs) => ({ mode, expected: mode === "lmi-dynamic" ? gs.length : 1, ...encode(mode, gs) })),
);

/** Replaces the value at `path` in a JSON value (arrays and objects), or deletes it. */
function mutate(value: unknown, path: readonly (string | number)[], next: { remove: true } | { to: unknown }): unknown {
  if (path.length === 0) return "remove" in next ? undefined : next.to;
  const [head, ...rest] = path as [string | number, ...(string | number)[]];
  if (Array.isArray(value)) return value.map((v, i) => (i === head ? mutate(v, rest, next) : v));
  const copy = { ...(value as Record<string, unknown>) };
  if (rest.length === 0 && "remove" in next) delete copy[head];
  else copy[head] = mutate(copy[head], rest, next);
  return copy;
}

/** Paths of the fields the codec reads, with a value each must refuse. */
type Broken = { path: (string | number)[]; next: { remove: true } | { to: unknown } };

function brokenField(mode: EngineMode, parsed: unknown): fc.Arbitrary<Broken> {
  const notString = fc.oneof(nastyNumber.filter(Number.isFinite), fc.boolean(), fc.constant(null), fc.constant([]), fc.constant({}));
  const notCount = fc.oneof(fc.constantFrom(-1, 0.5, "3", null, true, [], {}, Number.MAX_SAFE_INTEGER + 2, 1e21), fc.integer({ max: -1 }));
  const remove = fc.constant({ remove: true } as const);
  const to = (a: fc.Arbitrary<unknown>) => a.map((v) => ({ to: v }));
  const fields: fc.Arbitrary<Broken>[] = [];
  if (mode === "vllm-openai") {
    const body = parsed as { usage?: unknown };
    fields.push(
      fc.tuple(fc.constant(["choices"]), fc.oneof(remove, to(notString.filter((v) => !Array.isArray(v))))).map(([path, next]): Broken => ({ path: [...path], next })),
      fc.tuple(fc.constant(["choices", 0, "text"]), fc.oneof(remove, to(notString))).map(([path, next]): Broken => ({ path: [...path], next })),
      fc.tuple(fc.constant(["choices", 0, "finish_reason"]), fc.oneof(remove, to(fc.oneof(fc.constant(1), fc.constant([]), fc.constant({}))))).map(([path, next]): Broken => ({ path: [...path], next })),
    );
    if (body.usage !== undefined) fields.push(fc.tuple(fc.constant(["usage", "completion_tokens"]), fc.oneof(remove, to(notCount))).map(([path, next]): Broken => ({ path: [...path], next })));
  } else {
    const items = mode === "lmi-rolling" ? [parsed] : (parsed as unknown[]);
    const prefix = (i: number) => (mode === "lmi-rolling" ? [] : [i]);
    items.forEach((item, i) => {
      fields.push(fc.tuple(fc.constant([...prefix(i), "generated_text"]), fc.oneof(remove, to(notString))).map(([path, next]): Broken => ({ path: [...path], next })));
      if ((item as { details?: unknown }).details !== undefined) {
        fields.push(
          fc.tuple(fc.constant([...prefix(i), "details", "generated_tokens"]), fc.oneof(remove, to(notCount))).map(([path, next]): Broken => ({ path: [...path], next })),
          fc.tuple(fc.constant([...prefix(i), "details", "finish_reason"]), fc.oneof(remove, to(notString))).map(([path, next]): Broken => ({ path: [...path], next })),
          fc.tuple(fc.constant([...prefix(i), "details"]), to(fc.oneof(fc.constant(null), fc.constant("x"), fc.constant([])))).map(([path, next]): Broken => ({ path: [...path], next })),
        );
      }
    });
  }
  return fc.oneof(...fields);
}

describe("decodeResponse under fuzzing", () => {
  it("answers any body with one well-formed output per prompt or a ModelRejectedError", () => {
    const bodies = fc.oneof(
      nastyString,
      junkJson.map((v) => JSON.stringify(v) ?? ""),
      validResponse.chain((r) => mangledJsonText(r.body)),
      validResponse.map((r) => r.body),
      fc.array(fc.oneof(numberToken, fc.constant('{"generated_text":"x"}')), { maxLength: 4 }).map((items) => `[${items.join(",")}]`),
      numberToken.map((n) => `{"generated_text":"a b","details":{"finish_reason":"length","generated_tokens":${n}}}`),
      numberToken.map((n) => `{"choices":[{"text":"a","finish_reason":"stop"}],"usage":{"completion_tokens":${n}}}`),
    );
    fc.assert(
      fc.property(engine, bodies, fc.integer({ min: 1, max: 6 }), (mode, body, expected) => {
        const outcome = outcomeOf(() => decodeResponse(codecTarget[mode], body, expected, countWords), ModelRejectedError);
        if (!outcome.ok) return;
        expect(outcome.value).toHaveLength(expected);
        for (const out of outcome.value) {
          expect(typeof out.text).toBe("string");
          expect(Number.isSafeInteger(out.completion_tokens) && out.completion_tokens >= 0).toBe(true);
          expect(["length", "stop"]).toContain(out.finish_reason);
        }
      }),
      fuzzParams(2000),
    );
  });

  it("decodes every valid body of each engine to its outputs", () => {
    fc.assert(
      fc.property(validResponse, ({ mode, body, expected, outputs }) => {
        expect(decodeResponse(codecTarget[mode], body, expected, countWords)).toEqual(outputs);
      }),
      fuzzParams(1000),
    );
  });

  it("refuses a body with one broken field, naming the field", () => {
    const input = validResponse.chain((r) => {
      const parsed: unknown = JSON.parse(r.body);
      return brokenField(r.mode, parsed).map(({ path, next }) => ({ ...r, path, body: JSON.stringify(mutate(parsed, path, next)) }));
    });
    fc.assert(
      fc.property(input, ({ mode, body, expected, path }) => {
        const outcome = outcomeOf(() => decodeResponse(codecTarget[mode], body, expected, countWords), ModelRejectedError);
        expect(outcome.ok).toBe(false);
        if (outcome.ok) return;
        expect(outcome.error.message).toMatch(/^model returned an unexpected body: /);
        // The field named is the broken one, or the object that holds it when it went missing.
        const named = outcome.error.message.replace(/^model returned an unexpected body: /, "").split(": ")[0] ?? "";
        expect(path.join(".").startsWith(named)).toBe(true);
      }),
      fuzzParams(1000),
    );
  });

  it("refuses a number of generations that is not the number of prompts", () => {
    const input = fc.tuple(fc.array(generation, { maxLength: 8 }), fc.integer({ min: 1, max: 8 })).filter(([gs, n]) => gs.length !== n);
    fc.assert(
      fc.property(input, ([gs, expected]) => {
        const body = JSON.stringify(gs.map((g) => ({ generated_text: g.text })));
        const outcome = outcomeOf(() => decodeResponse(codecTarget["lmi-dynamic"], body, expected, countWords), ModelRejectedError);
        expect(outcome.ok ? "accepted" : outcome.error.message).toBe(`model returned ${gs.length} generations for ${expected} prompts`);
      }),
      fuzzParams(300),
    );
  });
});
