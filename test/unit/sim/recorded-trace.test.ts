import { describe, expect, it } from "vitest";
import { ValidationError } from "#shared/core/errors";
import { parseRecordedTrace, recordedSpanMs, recordedTrace, simJobsOfRecorded, traceMinutes } from "#shared/sim/recorded-trace";

describe("recorded traces", () => {
  const from = new Date("2026-12-07T10:00:00.000Z");
  const to = new Date("2026-12-07T10:05:00.000Z");

  it("turns a route's recent jobs into arrivals after the window's start, a job from before lanes in the batch lane", () => {
    const trace = recordedTrace("llama-2-7b", [
      { created_at: "2026-12-07T10:00:01.500Z", prompt_tokens: 10, max_tokens: 20, lane: "interactive" },
      { created_at: "2026-12-07T10:02:00.000Z", prompt_tokens: 30, max_tokens: 40, lane: undefined },
    ], from, to);

    expect(trace).toEqual({
      model: "llama-2-7b", from: from.toISOString(), to: to.toISOString(),
      jobs: [{ at_ms: 1500, prompt_tokens: 10, max_tokens: 20, lane: "interactive" }, { at_ms: 120_000, prompt_tokens: 30, max_tokens: 40, lane: "batch" }],
    });
    expect(recordedSpanMs(trace)).toBe(300_000);
    expect(simJobsOfRecorded(parseRecordedTrace(JSON.parse(JSON.stringify(trace))))).toEqual([
      { id: "r0", atMs: 1500, promptTokens: 10, maxTokens: 20, lane: "interactive" },
      { id: "r1", atMs: 120_000, promptTokens: 30, maxTokens: 40, lane: "batch" },
    ]);
  });

  it("refuses a file that is not a trace, naming the field", () => {
    const bad = { model: "m", from: from.toISOString(), to: to.toISOString(), jobs: [{ at_ms: 0, prompt_tokens: 0, max_tokens: 5, lane: "interactive" }] };
    expect(() => parseRecordedTrace(bad)).toThrow(ValidationError);
    expect(() => parseRecordedTrace(bad)).toThrow(/jobs\.0\.prompt_tokens/);
  });

  it("takes 1 to 60 minutes, and a default when none is asked", () => {
    expect(traceMinutes(undefined, 5)).toBe(5);
    expect(traceMinutes("12", 5)).toBe(12);
    for (const bad of ["0", "61", "1.5", "soon"]) expect(() => traceMinutes(bad, 5)).toThrow(/^minutes: must be an integer from 1 to 60/);
  });
});
