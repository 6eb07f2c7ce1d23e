import { mkdtempSync, readFileSync, rmSync, watch, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SQSEvent, SQSRecord } from "aws-lambda";
import { afterAll, describe, expect, it } from "vitest";
import { type InvocationReport, type KillQuestion, processInvoker } from "#local/process-invoker";

// Handlers as Lambda runs them, one process per invocation: a bundle-like .mjs and TypeScript source.
const dir = mkdtempSync(join(tmpdir(), "batchline-process-invoker-"));
const progress = join(dir, "progress.txt");
const modules = {
  echo: `export const handler = async (event, context) => ({
    batchItemFailures: event.Records.slice(1).map((r) => ({ itemIdentifier: r.messageId })),
    env: process.env.CHAOS_MARK, remaining: context.getRemainingTimeInMillis(), name: context.functionName });`,
  fails: `export const handler = async () => { throw new RangeError("no room for this window"); };`,
  slow: `export const handler = () => new Promise((resolve) => setTimeout(resolve, 60_000));`,
  partial: `import { appendFileSync } from "node:fs";
    export const handler = async () => {
      appendFileSync(${JSON.stringify(progress)}, "started\\n");
      await new Promise((resolve) => setTimeout(resolve, 60_000));
      appendFileSync(${JSON.stringify(progress)}, "finished\\n");
    };`,
  greedy: `export const handler = async () => {
      const hold = [];
      for (;;) { hold.push(Buffer.alloc(8 * 1024 * 1024, 1)); await new Promise((r) => setTimeout(r, 5)); }
    };`,
  broken: `throw new Error("cannot start: missing configuration");`,
};
for (const [name, code] of Object.entries(modules)) writeFileSync(join(dir, `${name}.mjs`), code);
writeFileSync(join(dir, "typed.ts"), `type Answer = { readonly batchItemFailures: readonly never[] };\nexport const handler = async (): Promise<Answer> => ({ batchItemFailures: [] });\n`);

afterAll(() => rmSync(dir, { recursive: true, force: true }));

const record = (id: string) => ({ messageId: id, receiptHandle: `rh-${id}`, body: "{}" }) as SQSRecord;
const event = (count: number): SQSEvent => ({ Records: Array.from({ length: count }, (_, i) => record(`m${i}`)) });

function invoker(kill?: (i: KillQuestion) => number | Promise<unknown> | undefined) {
  const reports: InvocationReport[] = [];
  const fn = (module: string, timeoutSeconds = 10, memoryMb?: number) => ({ module: join(dir, module), timeoutSeconds, ...(memoryMb !== undefined && { memoryMb }) });
  const running = processInvoker({
    functions: {
      echo: fn("echo.mjs"),
      fails: fn("fails.mjs"),
      slow: fn("slow.mjs", 1),
      killed: fn("partial.mjs"),
      greedy: fn("greedy.mjs", 30, 256),
      broken: fn("broken.mjs"),
      typed: fn("typed.ts"),
    },
    env: async () => ({ CHAOS_MARK: "from-the-stack" }),
    onInvocation: (r) => reports.push(r),
    ...(kill && { kill }),
  });
  return { ...running, reports };
}

describe("processInvoker", () => {
  it("runs the handler in a process of its own and answers with its response, like Invoke", async () => {
    const { invoke, reports } = invoker();
    const result = await invoke("echo", event(3));
    expect(result.functionError).toBeUndefined();
    const payload = JSON.parse(result.payload);
    expect(payload).toMatchObject({ batchItemFailures: [{ itemIdentifier: "m1" }, { itemIdentifier: "m2" }], env: "from-the-stack", name: "echo" });
    expect(payload.remaining).toBeGreaterThan(5_000);
    expect(payload.remaining).toBeLessThanOrEqual(10_000);
    expect(reports).toEqual([expect.objectContaining({ functionName: "echo", records: 3, outcome: "ok", pid: expect.any(Number) })]);
    expect(reports[0]?.pid).not.toBe(process.pid);
    expect(reports[0]?.peakRssBytes).toBeGreaterThan(10 * 1024 * 1024);
    expect(reports[0]?.cpuMs).toBeGreaterThan(0);
  });

  it("loads TypeScript source as well as a bundle", async () => {
    const result = await invoker().invoke("typed", event(1));
    expect([result.functionError, JSON.parse(result.payload)]).toEqual([undefined, { batchItemFailures: [] }]);
  });

  it("reports a handler's exception and a module that fails to load as function errors", async () => {
    const { invoke, reports } = invoker();
    const failed = await invoke("fails", event(1));
    expect(failed.functionError).toBe("Unhandled");
    expect(JSON.parse(failed.payload)).toMatchObject({ errorType: "RangeError", errorMessage: "no room for this window" });
    const broken = await invoke("broken", event(1));
    expect(broken.functionError).toBe("Unhandled");
    expect(JSON.parse(broken.payload).errorMessage).toContain("missing configuration");
    expect(reports.map((r) => r.outcome)).toEqual(["error", "init-error"]);
  });

  it("kills an invocation past its timeout", async () => {
    const { invoke, reports } = invoker();
    const result = await invoke("slow", event(1));
    expect(result.functionError).toBe("Unhandled");
    expect(JSON.parse(result.payload)).toMatchObject({ errorType: "Sandbox.Timedout", errorMessage: expect.stringContaining("timed out after 1.00 seconds") });
    expect(reports[0]?.outcome).toBe("timeout");
  });

  it("SIGKILLs the invocations `kill` picks mid-way: their partial work stays and no response comes back", async () => {
    const { invoke, reports, running } = invoker((i) => (i.functionName === "killed" ? 300 : undefined));
    const pending = invoke("killed", event(2));
    const result = await pending;
    expect(result.functionError).toBe("Unhandled");
    expect(JSON.parse(result.payload)).toMatchObject({ errorType: "Runtime.ExitError", errorMessage: expect.stringContaining("signal: killed") });
    expect(readFileSync(progress, "utf8")).toBe("started\n");
    expect(reports[0]).toMatchObject({ outcome: "killed", records: 2 });
    expect(running()).toBe(0);
    expect((await invoke("echo", event(1))).functionError).toBeUndefined();
  });

  it("SIGKILLs an invocation when the promise `kill` gave resolves, and tells `kill` when an invocation it let run has ended", async () => {
    const started = Promise.withResolvers<void>();
    const endedSignals: AbortSignal[] = [];
    const { invoke, reports } = invoker((i) => {
      endedSignals.push(i.ended);
      if (i.functionName !== "killed") return undefined;
      expect(i.event.Records).toHaveLength(2);
      return started.promise;
    });
    // The handler's first write, as a chaos run would see it happen (a claim, say).
    writeFileSync(progress, "");
    const watcher = watch(progress, () => {
      if (readFileSync(progress, "utf8").includes("started")) started.resolve();
    });
    const result = await invoke("killed", event(2));
    watcher.close();
    expect(readFileSync(progress, "utf8")).toBe("started\n");
    expect(JSON.parse(result.payload)).toMatchObject({ errorType: "Runtime.ExitError" });
    expect(reports[0]).toMatchObject({ outcome: "killed" });
    expect(await invoke("echo", event(1))).toMatchObject({ functionError: undefined });
    expect(endedSignals.map((s) => s.aborted)).toEqual([true, true]);
  });

  it("kills an invocation whose memory passes the function's memory size", async () => {
    const { invoke, reports } = invoker();
    const result = await invoke("greedy", event(1));
    expect(JSON.parse(result.payload)).toMatchObject({ errorType: "Runtime.OutOfMemory" });
    expect(reports[0]?.outcome).toBe("out-of-memory");
    expect(reports[0]?.peakRssBytes).toBeGreaterThan(256 * 1024 * 1024);
  });

  it("refuses a function it does not know", async () => {
    await expect(invoker().invoke("nothing", event(1))).rejects.toThrow(/no function nothing/);
  });
});
