import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateApiKey } from "#shared/core/api-keys";
import { startStackProcess, stackPorts, type StackProcess } from "../helpers/stack-process.ts";

// The batchline command as a user runs it, a child process, against the embedded stack started as
// `npm start` starts it: a 1,000-line batch file submitted with a progress report, the command
// killed mid-way, run again: it goes on with the same batch and writes every result once.
const stage = `e2ec${Math.random().toString(36).slice(2, 8)}`;
const dir = mkdtempSync(join(tmpdir(), "batchline-e2e-cli-"));
const apiKey = generateApiKey();
const LINES = 1_000;
let stack: StackProcess;

type Run = { child: ChildProcess; stdout: string; stderr: string; exited: Promise<number | null> };

function cli(args: readonly string[]): Run {
  const child = spawn(process.execPath, ["tools/cli/main.ts", ...args], {
    env: { ...process.env, BATCHLINE_API_KEY: apiKey, BATCHLINE_API_URL: stack.http, BATCHLINE_WS_URL: stack.ws, BATCHLINE_CONFIG: join(dir, "none.json") },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const run: Run = { child, stdout: "", stderr: "", exited: new Promise((resolve) => child.once("exit", (code) => resolve(code))) };
  child.stdout?.on("data", (chunk: Buffer) => (run.stdout += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (run.stderr += chunk.toString()));
  return run;
}

/** Resolves once `probe` holds, checking whenever the command writes; fails past the deadline. */
function until(run: Run, probe: () => boolean, what: string, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; stderr:\n${run.stderr}`)), timeoutMs);
    const check = () => {
      if (!probe()) return;
      clearTimeout(timer);
      resolve();
    };
    run.child.stderr?.on("data", check);
    run.child.stdout?.on("data", check);
    void run.exited.then(() => {
      clearTimeout(timer);
      if (probe()) resolve();
      else reject(new Error(`the command exited before ${what}; stderr:\n${run.stderr}`));
    });
  });
}

beforeAll(async () => {
  stack = await startStackProcess({ stage, dataDir: join(dir, "data"), apiKey }, await stackPorts());
}, 180_000);

afterAll(async () => {
  await stack?.interrupt();
  rmSync(dir, { recursive: true, force: true });
});

describe("the batchline command on the embedded stack", () => {
  it("submits a 1,000-line batch file with progress, and killed mid-way resumes the same batch and writes every result once", async () => {
    // Prepare
    const input = join(dir, "requests.jsonl");
    const ids = Array.from({ length: LINES }, (_, i) => `line-${i}`);
    writeFileSync(input, ids.map((id, i) => JSON.stringify({ custom_id: id, method: "POST", url: "/v1/chat/completions", body: { model: "llama-3-1b", messages: [{ role: "user", content: `Count to ${i}.` }], max_tokens: 32 } })).join("\n"));
    const results = join(dir, "requests.results.jsonl");
    const args = ["--json", "submit", input];

    // Act: the first run is killed once the batch exists and reports progress.
    const first = cli(args);
    await until(first, () => first.stderr.includes('"type":"progress"'), "a progress report", 120_000);
    first.child.kill("SIGKILL");
    await first.exited;
    const state = JSON.parse(readFileSync(`${results}.batchline.json`, "utf8")) as { batch_id: string; file_id: string };
    const second = cli(args);
    const code = await second.exited;

    // Assess: the same batch, completed, every line's result once, in input order.
    expect({ code, stderr: second.stderr.split("\n").find((l) => l.includes('"type":"note"')) }).toMatchObject({ code: 0, stderr: expect.stringContaining(`resuming batch ${state.batch_id}`) });
    const batch = JSON.parse(second.stdout.trim().split("\n").at(-1) ?? "{}") as { id: string; status: string; request_counts: { total: number; completed: number; failed: number } };
    expect(batch).toMatchObject({ id: state.batch_id, status: "completed", request_counts: { total: LINES, completed: LINES, failed: 0 } });
    const lines = readFileSync(results, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { custom_id: string; response: { status_code: number; body: { object: string } } });
    expect(lines.map((l) => l.custom_id)).toEqual(ids);
    expect(lines.every((l) => l.response.status_code === 200 && l.response.body.object === "chat.completion")).toBe(true);
    // Nothing was submitted twice: the tenant has this one batch.
    const listed = (await (await fetch(`${stack.http}/v1/batches?limit=100`, { headers: { authorization: `Bearer ${apiKey}` } })).json()) as { data: { id: string }[] };
    expect(listed.data.map((b) => b.id)).toEqual([state.batch_id]);

    // A third run has nothing left to do: it writes no line again.
    const third = cli(args);
    expect(await third.exited).toBe(0);
    expect(readFileSync(results, "utf8").trim().split("\n")).toHaveLength(LINES);
    expect(JSON.parse(third.stdout.trim()).lines_written).toBe(0);
  }, 300_000);

  it("exits with the status that says what went wrong: a usage error, a refused request", async () => {
    const usage = cli(["submit"]);
    expect(await usage.exited).toBe(2);
    expect(usage.stderr).toContain("submit needs a batch file, or --prompt for one job");
    const refused = cli(["status", "batch_doesnotexist"]);
    expect(await refused.exited).toBe(6);
    expect(refused.stderr).toContain("GET /v1/batches/batch_doesnotexist: 404");
  }, 60_000);
});
