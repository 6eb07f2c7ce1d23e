import { describe, expect, it } from "vitest";
import { busiestFirst, type CpuProfile, functionLabel, packageOf, summarizeProfile } from "../../tools/bench/cpu-profile.ts";

const frame = (functionName: string, url = "", lineNumber = 0) => ({ functionName, url, lineNumber });

/** Six samples of 1 ms from t = 1 s: handle, handle, parse, idle, GC, handle. */
const profile: CpuProfile = {
  nodes: [
    { id: 1, callFrame: frame("(root)") },
    { id: 2, callFrame: frame("(idle)") },
    { id: 3, callFrame: frame("handle", "file:///work/main/shared/app/submit.ts", 9) },
    { id: 4, callFrame: frame("parse", "file:///work/main/node_modules/@smithy/core/dist/index.js", 0) },
    { id: 5, callFrame: frame("(garbage collector)") },
  ],
  startTime: 1_000_000,
  endTime: 1_006_000,
  samples: [3, 3, 4, 2, 5, 3],
  timeDeltas: [0, 1_000, 1_000, 1_000, 1_000, 1_000],
};

describe("CPU profile summary (issue 18 item 3)", () => {
  it("gives self time by function and by package, idle left out", () => {
    const s = summarizeProfile("osls", profile);
    expect(s).toMatchObject({ process: "osls", window_ms: 6, busy_ms: 5 });
    expect(s.cpu_share).toBeCloseTo(5 / 6);
    expect(s.functions).toEqual([
      { name: "handle app/submit.ts:10", ms: 3, share: 0.6 },
      { name: "parse dist/index.js:1", ms: 1, share: 0.2 },
      { name: "(garbage collector)", ms: 1, share: 0.2 },
    ]);
    expect(s.packages.map((p) => [p.name, p.ms])).toEqual([["batchline", 3], ["@smithy/core", 1], ["(garbage collector)", 1]]);
  });

  it("counts only the part of each sample inside the window", () => {
    const s = summarizeProfile("osls", profile, { fromUs: 1_001_500, toUs: 1_004_500 });
    expect(s.window_ms).toBe(3);
    expect(s.busy_ms).toBe(2);
    expect(Object.fromEntries(s.functions.map((f) => [f.name, f.ms]))).toEqual({ "handle app/submit.ts:10": 0.5, "parse dist/index.js:1": 1, "(garbage collector)": 0.5 });
  });

  it("keeps the window within the profile, and an empty window has nothing in it", () => {
    expect(summarizeProfile("p", profile, { fromUs: 0, toUs: 9e9 }).window_ms).toBe(6);
    const outside = summarizeProfile("p", profile, { fromUs: 2_000_000, toUs: 3_000_000 });
    expect(outside).toMatchObject({ window_ms: 0, busy_ms: 0, cpu_share: 0, functions: [] });
  });

  it("names packages, scoped ones too, and the project's own files and V8's entries", () => {
    expect(packageOf("file:///a/node_modules/fauxqs/dist/x.js", "f")).toBe("fauxqs");
    expect(packageOf("file:///a/node_modules/osls/node_modules/@aws-sdk/client-sqs/dist/x.js", "f")).toBe("@aws-sdk/client-sqs");
    expect(packageOf("node:internal/streams/readable", "f")).toBe("node");
    expect(packageOf("file:///a/infra/local/stack.ts", "f")).toBe("batchline");
    expect(packageOf("", "(program)")).toBe("(program)");
    expect(packageOf("", "JSON.parse")).toBe("(native)");
    expect(functionLabel("", "file:///a/b/c.js", 4)).toBe("(anonymous) b/c.js:5");
  });

  it("orders processes busiest first", () => {
    const a = summarizeProfile("a", profile, { fromUs: 1_001_500, toUs: 1_004_500 });
    const b = summarizeProfile("b", profile);
    expect(busiestFirst([a, b]).map((s) => s.process)).toEqual(["b", "a"]);
  });
});
