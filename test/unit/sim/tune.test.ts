import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadRouteCatalog } from "#shared/config";
import { defaultRouteSettings } from "#shared/core/route-settings";
import type { Route } from "#shared/core/routes";
import { simJobsOf } from "#shared/sim/setup";
import { generateTrace } from "#shared/sim/trace";
import { candidateGrid, tune } from "#shared/sim/tune";

const route = loadRouteCatalog(join(process.cwd(), "infra", "routes.yml")).routes.get("llama-2-7b") as Route;
const settings = defaultRouteSettings(route);
// 300 a minute of 512 + 512: one copy serves it (about 550 at most) in ~7 s, two in ~4.5 s.
const trace = simJobsOf(generateTrace({ seed: 3, durationMs: 60_000, arrivals: { kind: "poisson", rpm: 300 }, lengths: { kind: "fixed", promptTokens: 512, maxTokens: 512 } }));
const grid = [1, 2].flatMap((copies) => [32, 128].map((inFlight) => ({ copies, max_in_flight_per_copy: inFlight, max_wait_ms: settings.max_wait_ms })));

describe("the trade-off search", () => {
  it("picks the cheapest candidate that meets a loose objective: one copy", () => {
    const result = tune(route, settings, trace, { percentile: "p95", targetMs: 12_000 }, { maxCopies: 2, durationMs: 60_000, grid });

    expect(result.best).toMatchObject({ copies: 1, meets_objective: true });
    // Nothing that meets the objective serves more per dollar.
    for (const r of result.candidates.filter((c) => c.meets_objective)) expect(r.requests_per_dollar).toBeLessThanOrEqual((result.best?.requests_per_dollar ?? 0) * 1.01);
    expect(result.candidates).toHaveLength(4);
    expect(result.current).toMatchObject({ copies: 1, max_in_flight_per_copy: 128 });
  });

  it("pays for a second copy when one cannot meet a tight objective, and finds nothing when none can", () => {
    const tight = tune(route, settings, trace, { percentile: "p95", targetMs: 5_500 }, { maxCopies: 2, durationMs: 60_000, grid });
    const impossible = tune(route, settings, trace, { percentile: "p99", targetMs: 1_000 }, { maxCopies: 2, durationMs: 60_000, grid });

    expect(tight.best).toMatchObject({ copies: 2, meets_objective: true });
    expect(tight.candidates.filter((c) => c.copies === 1).every((c) => !c.meets_objective)).toBe(true);
    expect(impossible.best).toBeUndefined();
  });

  it("tries holds only where an engine batches statically, and always the current settings", () => {
    const current = { ...settings, max_in_flight_per_copy: 100, max_wait_ms: 700 };
    const rolling = candidateGrid(route, current, { maxCopies: 2, currentCopies: 1 });
    const staticRoute: Route = { ...route, components: route.components.map((c) => ({ ...c, engine: "lmi-dynamic" as const })) };
    const statics = candidateGrid(staticRoute, current, { maxCopies: 1, currentCopies: 1 });

    expect(new Set(rolling.map((c) => c.max_wait_ms))).toEqual(new Set([700]));
    expect(rolling).toContainEqual({ copies: 1, max_in_flight_per_copy: 100, max_wait_ms: 700 });
    expect(new Set(rolling.map((c) => c.copies))).toEqual(new Set([1, 2]));
    expect(new Set(statics.map((c) => c.max_wait_ms))).toEqual(new Set([0, 250, 700, 1000, 3000]));
  });
});
