import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, type CliRun } from "../helpers/cli-process.ts";
import { generateApiKey } from "#shared/core/api-keys";
import { startStackProcess, stackPorts, type StackProcess } from "../helpers/stack-process.ts";

// The tuning simulator as ops use it, on the embedded stack started as `npm start` starts it: the
// predict endpoint beside a proposed change, `batchline trace export` of the route's recent jobs,
// and `batchline tune --apply` writing its recommendation through the settings API.
const stage = `e2et${Math.random().toString(36).slice(2, 8)}`;
const dir = mkdtempSync(join(tmpdir(), "batchline-e2e-tune-"));
const apiKey = generateApiKey();
const MODEL = "llama-2-7b";
let stack: StackProcess;

function cli(args: readonly string[]): Promise<CliRun> {
  return runCli(args, { BATCHLINE_API_KEY: apiKey, BATCHLINE_API_URL: stack.http, BATCHLINE_WS_URL: stack.ws, BATCHLINE_CONFIG: join(dir, "none.json") });
}

async function api(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const response = await fetch(`${stack.http}${path}`, {
    method,
    headers: { authorization: `Bearer ${apiKey}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: response.status, json: await response.json() };
}

beforeAll(async () => {
  stack = await startStackProcess({ stage, dataDir: join(dir, "data"), apiKey }, await stackPorts());
}, 180_000);

afterAll(async () => {
  await stack?.interrupt();
  rmSync(dir, { recursive: true, force: true });
});

describe("the tuning simulator on the embedded stack", () => {
  it("predicts a change of settings beside the current ones, without applying it", async () => {
    const answer = await api("POST", `/v1/routes/${MODEL}/settings/predict`, { max_in_flight_per_copy: 32, copies: 2 });
    const refused = await api("POST", `/v1/routes/${MODEL}/settings/predict`, { max_in_flight_per_copy: 0 });
    const settings = await api("GET", `/v1/routes/${MODEL}/settings`);

    const P = { throughput_rpm: expect.any(Number), p50_ms: expect.any(Number), p95_ms: expect.any(Number), p99_ms: expect.any(Number), gpu_busy: expect.any(Number), cost_per_million_tokens: expect.any(Number) };
    expect(answer).toEqual({ status: 200, json: { model: MODEL, window_s: 300, jobs: expect.any(Number), synthetic: expect.any(Boolean), current: P, proposed: P } });
    expect(answer.json.proposed.cost_per_million_tokens).toBeGreaterThan(answer.json.current.cost_per_million_tokens);
    expect(refused).toMatchObject({ status: 400, json: { error: { field: "max_in_flight_per_copy" } } });
    expect(settings.json).toMatchObject({ source: "default" });
  }, 60_000);

  it("exports the route's recent jobs as a trace that tune replays", async () => {
    // Prepare: three jobs of the route, whatever becomes of them.
    for (const i of [1, 2, 3]) expect((await api("POST", "/v1/jobs", { model: MODEL, prompt: `Count to ${i}.`, max_tokens: 16 })).status).toBe(202);
    const file = join(dir, "trace.json");

    // Act
    const exported = await cli(["trace", "export", "--model", MODEL, "--minutes", "5", "--out", file]);
    const tuned = await cli(["--json", "tune", "--model", MODEL, "--trace", file, "--target-ms", "60000", "--max-copies", "1"]);

    // Assess
    expect(exported.code).toBe(0);
    const trace = JSON.parse(readFileSync(file, "utf8")) as { model: string; jobs: { max_tokens: number; lane: string }[] };
    expect(trace.model).toBe(MODEL);
    expect(trace.jobs).toHaveLength(3);
    expect(trace.jobs.every((j) => j.max_tokens === 16 && j.lane === "interactive")).toBe(true);
    expect({ code: tuned.code, stderr: tuned.stderr }).toEqual({ code: 0, stderr: "" });
    expect(JSON.parse(tuned.stdout)).toMatchObject({ jobs: 3, best: { copies: 1, meets_objective: true }, applied: null });
  }, 120_000);

  it("tune --apply writes the recommendation through the settings API, and prints the trade-off", async () => {
    // Prepare: a poor setting to start from: 16 sequences a copy cannot keep up with 400 a minute.
    expect((await api("PUT", `/v1/routes/${MODEL}/settings`, { max_in_flight_per_copy: 16 })).status).toBe(200);
    const synthetic = ["--rpm", "400", "--duration-s", "60", "--target-ms", "12000", "--max-copies", "1"];

    // Act
    const shown = await cli(["tune", "--model", MODEL, ...synthetic]);
    const applied = await cli(["--json", "tune", "--model", MODEL, ...synthetic, "--apply"]);
    const after = await api("GET", `/v1/routes/${MODEL}/settings`);

    // Assess
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/recommended: 1 copy, max_in_flight_per_copy \d+/);
    expect(shown.stdout).toContain("p95 latency, s, against dollars per 1,000 requests");
    expect(applied.code).toBe(0);
    const result = JSON.parse(applied.stdout) as { best: { max_in_flight_per_copy: number; max_wait_ms: number }; applied: { max_in_flight_per_copy: number } };
    expect(result.best.max_in_flight_per_copy).toBeGreaterThan(16);
    expect(result.applied).toMatchObject({ max_in_flight_per_copy: result.best.max_in_flight_per_copy });
    expect(after.json).toMatchObject({ source: "stored", settings: { max_in_flight_per_copy: result.best.max_in_flight_per_copy, max_wait_ms: result.best.max_wait_ms } });
  }, 120_000);

  it("exits 8 and applies nothing when no candidate meets the objective", async () => {
    const before = await api("GET", `/v1/routes/${MODEL}/settings`);
    const run = await cli(["tune", "--model", MODEL, "--rpm", "400", "--duration-s", "30", "--objective", "p99", "--target-ms", "1000", "--max-copies", "1", "--apply"]);
    const after = await api("GET", `/v1/routes/${MODEL}/settings`);

    expect(run.code).toBe(8);
    expect(run.stdout).toContain("no candidate meets p99");
    expect(after.json).toEqual(before.json);
  }, 120_000);
});
