import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tokenCounter } from "#shared/core/tokens";
import { startSageMakerEmulator, type SageMakerEmulator } from "#local/sagemaker/server";
import { componentOf, routesCatalog } from "../helpers/sagemaker.ts";

/**
 * The real AWS CLI, which no one here wrote, against the emulator. It must know
 * --inference-component-name: aws-cli 1.29+ or 2.13+ (Debian bookworm's awscli 2.9 does not).
 */
const catalog = routesCatalog();
const rolling = componentOf(catalog, "llama-2-7b-ic");

type Run = { code: number; stdout: string; stderr: string };

function aws(args: readonly string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    execFile("aws", args, { env, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error && (error as NodeJS.ErrnoException).code === "ENOENT") {
        reject(new Error("The AWS CLI (`aws`) is not on PATH. This test needs aws-cli 1.29+ or 2.13+, which know --inference-component-name."));
        return;
      }
      resolve({ code: typeof error?.code === "number" ? error.code : error ? 1 : 0, stdout, stderr });
    });
  });
}

describe("the AWS CLI against the SageMaker emulator", () => {
  let emulator: SageMakerEmulator;
  let dir: string;
  let env: NodeJS.ProcessEnv;
  /**
   * The request body, in a file passed as fileb://: both aws-cli 1 and 2 send its bytes as they
   * are (a body given as text is base64 to aws-cli 2 unless --cli-binary-format says otherwise,
   * a flag aws-cli 1 does not know).
   */
  let bodyFile: string;

  beforeAll(async () => {
    emulator = await startSageMakerEmulator({ catalog, port: 0, timeScale: 100 });
    dir = await mkdtemp(join(tmpdir(), "batchline-aws-cli-"));
    env = {
      PATH: process.env.PATH,
      HOME: dir,
      AWS_ACCESS_KEY_ID: "local",
      AWS_SECRET_ACCESS_KEY: "local",
      AWS_DEFAULT_REGION: "us-east-1",
      AWS_CONFIG_FILE: join(dir, "config"),
      AWS_SHARED_CREDENTIALS_FILE: join(dir, "credentials"),
      AWS_PAGER: "",
    };
    bodyFile = join(dir, "body.json");
    await writeFile(bodyFile, JSON.stringify({ inputs: "Hello from the CLI", parameters: { max_new_tokens: 9 } }));
  });
  afterAll(async () => {
    await emulator?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const invoke = (component: string, outFile: string) =>
    aws(
      [
        "sagemaker-runtime", "invoke-endpoint",
        "--endpoint-url", emulator.url,
        "--endpoint-name", rolling.endpointName,
        "--inference-component-name", component,
        "--content-type", "application/json",
        "--body", `fileb://${bodyFile}`,
        outFile,
      ],
      env,
    );

  /** Fails with a plain message when the CLI on PATH is too old to know inference components. */
  function assertKnowsComponents(run: Run): void {
    if (/Unknown options: .*--inference-component-name|unknown.*inference-component-name/i.test(run.stderr)) {
      throw new Error(`The AWS CLI on PATH does not know --inference-component-name (it said: ${run.stderr.trim()}). Install aws-cli 1.29+ or 2.13+.`);
    }
  }

  it("invokes an inference component and writes the answer to the out file", async () => {
    // Prepare
    const outFile = join(dir, "out.json");

    // Act
    const run = await invoke(rolling.name, outFile);

    // Assess
    assertKnowsComponents(run);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ ContentType: "application/json", InvokedProductionVariant: "AllTraffic" });
    const answer = JSON.parse(await readFile(outFile, "utf8")) as { generated_text: string };
    expect(tokenCounter("llama2").countCompletion(answer.generated_text)).toBe(9);
  });

  it("says ValidationError, in the CLI's words, for a component the endpoint does not host", async () => {
    // Act
    const run = await invoke("ghost-ic", join(dir, "ghost.json"));

    // Assess
    assertKnowsComponents(run);
    expect(run.code).not.toBe(0);
    expect(run.stderr.trim()).toBe(
      `An error occurred (ValidationError) when calling the InvokeEndpoint operation: Inference component ghost-ic not found on endpoint ${rolling.endpointName}.`,
    );
  });
});
