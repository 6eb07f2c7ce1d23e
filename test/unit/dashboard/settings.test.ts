import { describe, expect, it } from "vitest";
import type { RouteSettings } from "#shared/core/route-settings";
import type { SettingsPrediction } from "#shared/app/route-tuning";
import { isEmptyPatch, patchOf, predictionRows } from "../../../web/dashboard/settings.ts";

const current: RouteSettings = {
  dispatch: "adaptive",
  top_up: true,
  max_in_flight_per_copy: 128,
  max_wait_ms: 250,
  latency_objective_ms: 30_000,
  warming_recheck_seconds: 30,
  max_warming_wait_seconds: 1800,
  batch_lane_floor_percent: 10,
  interactive_slowdown_percent: 15,
  measured_hold: true,
};
const form = (over: Record<string, string | boolean> = {}) => ({
  dispatch: "adaptive", top_up: true, measured_hold: true, max_in_flight_per_copy: "128", max_wait_ms: "250", latency_objective_ms: "30000",
  warming_recheck_seconds: "30", max_warming_wait_seconds: "1800", batch_lane_floor_percent: "10", interactive_slowdown_percent: "15", copies: "", ...over,
});

describe("the dashboard's settings form", () => {
  it("sends only what changed, typed as the API takes it", () => {
    expect(isEmptyPatch(patchOf(current, form()))).toBe(true);
    expect(patchOf(current, form({ max_wait_ms: "500", top_up: false, dispatch: "immediate" }))).toEqual({ settings: { max_wait_ms: 500, top_up: false, dispatch: "immediate" } });
    // Copies go to the prediction only, and only when they differ from the component's.
    expect(patchOf(current, form({ copies: "2" }), 1)).toEqual({ settings: {}, copies: 2 });
    expect(patchOf(current, form({ copies: "1" }), 1)).toEqual({ settings: {} });
  });

  it("names a field that is not a number", () => {
    expect(() => patchOf(current, form({ max_wait_ms: "soon" }))).toThrow('max_wait_ms: must be a number, got "soon"');
    expect(() => patchOf(current, form({ max_in_flight_per_copy: "" }))).toThrow("max_in_flight_per_copy: must be a number");
  });

  it("shows a prediction as rows of now, with the change, and the change in percent", () => {
    const prediction: SettingsPrediction = {
      model: "llama-2-7b", window_s: 300, jobs: 600, synthetic: false,
      current: { throughput_rpm: 120, p50_ms: 2000, p95_ms: 4000, p99_ms: 5000, gpu_busy: 0.5, cost_per_million_tokens: 100 },
      proposed: { throughput_rpm: 60, p50_ms: 3000, p95_ms: null, p99_ms: null, gpu_busy: 0.25, cost_per_million_tokens: 200 },
    };
    const rows = Object.fromEntries(predictionRows(prediction).map((r) => [r.label, [r.current, r.proposed, r.change]]));
    expect(rows["throughput (jobs/min)"]).toEqual(["120.0", "60.0", "-50%"]);
    expect(rows.p50).toEqual(["2.00 s", "3.00 s", "+50%"]);
    expect(rows.p95).toEqual(["4.00 s", "unreachable", "—"]);
    expect(rows["GPU busy"]).toEqual(["50%", "25%", "-50%"]);
  });
});
