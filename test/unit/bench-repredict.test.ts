import { execFile } from "node:child_process";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { loadRouteCatalog } from "#shared/config";
import { defaultRouteSettings } from "#shared/core/route-settings";
import type { Route } from "#shared/core/routes";
import type { PolicyStack } from "../../tools/bench/policy-stack.ts";
import { predictRun } from "../../tools/bench/prediction.ts";
import { scenarios } from "../../tools/bench/scenarios.ts";
import { generateTrace } from "../../tools/bench/trace.ts";

const route = loadRouteCatalog(join(process.cwd(), "infra", "routes.yml")).routes.get("llama-2-7b") as Route;
const SEED = 20261127;

describe("npm run bench:repredict", () => {
  it("rewrites a measured run's prediction with the simulator as it is now, on the scenario's seeded trace, and says so", async () => {
    // Prepare: a bench JSON with one measured run and a stale prediction.
    const settings = defaultRouteSettings(route);
    const measured = { name: "d-adaptive", throughput_rpm: 66, p95_ms: 4_000, prediction: { p95_ms: 1 } };
    const bench = {
      mode: "quick",
      seed: SEED,
      route: { model: "llama-2-7b" },
      policies: [{ name: "d-adaptive", engine: route.components[0]?.engine, event_source_mapping: { batch_size: 10, batching_window_seconds: 0, maximum_concurrency: 2 }, settings }],
      scenarios: [{ name: "ten-percent", engine_direct: { p95_ms: 3_700 }, policies: [measured] }],
    };
    const file = join(await mkdtemp(join(tmpdir(), "repredict-")), "latest.json");
    await writeFile(file, JSON.stringify(bench));
    const scenario = scenarios("quick", SEED).find((s) => s.name === "ten-percent");
    if (!scenario) throw new Error("no ten-percent scenario");
    const stack = { route, component: route.components[0], settings, mapping: { batchSize: 10, maximumBatchingWindowSeconds: 0, maximumConcurrency: 2 } } as unknown as PolicyStack;
    const expected = predictRun(stack, scenario, generateTrace(scenario.trace), measured, { p95_ms: 3_700 });

    // Act
    const { stdout } = await promisify(execFile)(process.execPath, ["tools/bench/repredict.ts", file]);

    // Assess
    const rewritten = JSON.parse(await readFile(file, "utf8"));
    const prediction = rewritten.scenarios[0].policies[0].prediction;
    expect(prediction).toMatchObject({ p95_ms: expected.p95_ms, throughput_rpm: expected.throughput_rpm, error_p95: expected.error_p95, measured_p95_ms: 4_000 });
    expect(Date.parse(prediction.repredicted_at)).not.toBeNaN();
    expect(stdout).toContain("ten-percent d-adaptive");
  });
});
