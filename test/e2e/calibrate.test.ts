import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli, type CliRun } from "../helpers/cli-process.ts";
import { parse as parseYaml } from "yaml";
import { loadRouteCatalog } from "#shared/config";
import { decodeStepMs, prefillMs } from "#shared/core/latency-model";
import { profileFileOf, profileFileSchema } from "#shared/core/profile-file";
import { shippedProfile, type LatencyProfile } from "#shared/core/profiles";
import { buildRouteCatalog, RoutesFileError } from "#shared/core/routes";
import { startSageMakerEmulator, type SageMakerEmulator } from "#local/sagemaker/server";
import { control } from "../helpers/sagemaker.ts";

// `batchline calibrate` as a user runs it, against the SageMaker emulator set to a profile the
// command is not shown: the shipped Llama-2-7B H100 profile with every number changed. The command
// reads the routes file as shipped (which names the shipped profile) and sees only the endpoint.
//
// The hidden GPU is slow (decode ×3, prefill at a tenth of the H100's rate, an A10G's pace): the
// command times calls on the wall clock, and on this loaded machine the emulator's own work (a
// call's HTTP, a prompt's token count in JavaScript, a late timer) must stay small beside it.
const COMPONENT = "llama-2-7b-ic";
const shipped = shippedProfile("llama2-7b-bf16-h100");
const hidden: LatencyProfile = {
  ...shipped.latency,
  name: "hidden-slower-gpu",
  decodeBaseMs: shipped.latency.decodeBaseMs * 3,
  decodePerSequenceMs: 0.05,
  decodePerContextTokenMs: shipped.latency.decodePerContextTokenMs * 3,
  prefillMinMs: shipped.latency.prefillMinMs * 2,
  prefillTokensPerMs: shipped.latency.prefillTokensPerMs * 0.1,
};
// Outputs long enough that every burst runs all its prompts together for most of its steps (a
// loaded machine spreads the 32 calls of a burst over some 20 decode steps of this GPU), and that
// a few hundred ms of the loaded machine's lateness at a burst's end is a few % of the 272 steps
// between its two lengths.
const GRID = { batchSizes: [1, 8, 32], promptTokens: [128, 384], newTokens: [48, 320] };
const dir = mkdtempSync(join(tmpdir(), "batchline-e2e-calibrate-"));
const routesText = readFileSync("infra/routes.yml", "utf8");
let emulator: SageMakerEmulator;

function cli(args: readonly string[]): Promise<CliRun> {
  return runCli(["calibrate", ...args], { AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: emulator.url, AWS_REGION: "us-east-1", AWS_ACCESS_KEY_ID: "local", AWS_SECRET_ACCESS_KEY: "local" });
}

const gridArgs = ["--batch-sizes", GRID.batchSizes.join(","), "--prompt-tokens", GRID.promptTokens.join(","), "--new-tokens", GRID.newTokens.join(",")];
const invocations = async () => ((await control(emulator, "GET", "/_emulator/stats")).components as { component: string; invocations: number }[]).find((c) => c.component === COMPONENT)?.invocations;

beforeAll(async () => {
  const raw = parseYaml(routesText);
  raw.components[COMPONENT] = { ...raw.components[COMPONENT], copies: 1, profile: profileFileOf({ ...shipped, latency: hidden }) };
  emulator = await startSageMakerEmulator({ catalog: buildRouteCatalog(raw), port: 0 });
});

afterAll(async () => {
  await emulator?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("batchline calibrate against the embedded emulator", () => {
  it("prints the plan's requests and GPU-minutes and sends nothing unconfirmed", async () => {
    // Act
    const run = await cli(["--component", COMPONENT, "--out", join(dir, "unconfirmed.json"), ...gridArgs]);

    // Assess
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/\d+ bursts, \d+ requests/);
    expect(run.stderr).toMatch(/[\d.]+ GPU-minutes on 1 GPU\(s\) a copy, about \$[\d.]+/);
    expect(run.stderr).toContain("confirm with --yes");
    expect(await invocations()).toBe(0);
  });

  it("recovers the hidden profile's decode step and prefill within 10% and writes a profile file routes.yml can name", async () => {
    // Arrange
    const out = join(dir, "calibrated.json");

    // Act
    const run = await cli(["--component", COMPONENT, "--out", out, "--yes", "--repeats", "2", "--name", "llama2-7b-emulated", ...gridArgs]);

    // Assess
    expect(run.stderr).toContain("fit error");
    expect(run.code, run.stderr).toBe(0);
    console.info(run.stderr.split("\n").filter((line) => !/^  \d+\/\d+:/.test(line)).join("\n"));
    const file = profileFileSchema.parse(JSON.parse(readFileSync(out, "utf8")));
    expect(file.provenance).toMatchObject({ method: "measured", dtype: "bf16", gpu: expect.stringContaining("h100-80gb") });
    expect(file.gpu).toBe("h100-80gb");
    const routesFile = join(dir, "routes.yml");
    writeFileSync(routesFile, routesText.replace("profile: llama2-7b-bf16-h100", "profile: ./calibrated.json"));
    const fitted = loadRouteCatalog(routesFile).components.get(COMPONENT)?.latency;
    expect(fitted?.name).toBe("llama2-7b-emulated");
    if (!fitted) return;
    const off = (got: number, want: number) => Math.abs(got / want - 1);
    expect(off(fitted.decodeBaseMs, hidden.decodeBaseMs)).toBeLessThan(0.1);
    expect(off(fitted.prefillTokensPerMs, hidden.prefillTokensPerMs)).toBeLessThan(0.1);
    for (const batch of GRID.batchSizes) {
      for (const context of GRID.promptTokens.map((p) => p + 48)) {
        expect(off(decodeStepMs(fitted, batch, batch * context), decodeStepMs(hidden, batch, batch * context)), `decode step of ${batch} × ${context}`).toBeLessThan(0.1);
      }
    }
    for (const tokens of [1024, 2048, 8192]) {
      expect(off(prefillMs(fitted, tokens), prefillMs(hidden, tokens)), `prefill of ${tokens}`).toBeLessThan(0.1);
    }
  }, 420_000);

  it("refuses a routes file whose profile file is missing or not a profile, naming the component and the file", () => {
    // Arrange
    const missing = join(dir, "missing.yml");
    writeFileSync(missing, routesText.replace("profile: llama2-7b-bf16-h100", "profile: ./nowhere.json"));
    const wrong = join(dir, "wrong.yml");
    writeFileSync(join(dir, "wrong.json"), JSON.stringify({ name: "x", gpu: "h100-80gb" }));
    writeFileSync(wrong, routesText.replace("profile: llama2-7b-bf16-h100", "profile: ./wrong.json"));

    // Act / Assess
    expect(() => loadRouteCatalog(missing)).toThrow(RoutesFileError);
    expect(() => loadRouteCatalog(missing)).toThrow(/components\.llama-2-7b-ic\.profile: cannot read profile file \.\/nowhere\.json/);
    expect(() => loadRouteCatalog(wrong)).toThrow(/components\.llama-2-7b-ic\.profile\.latency/);
  });
});
