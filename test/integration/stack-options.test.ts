import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SendMessageCommand } from "@aws-sdk/client-sqs";
import type { SQSEvent } from "aws-lambda";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { afterEach, describe, expect, it } from "vitest";
import { localSqsClient } from "#local/sqs";
import { applyMappingOverrides, observedInvoker, type PollerInvocation, type Stack, startStack, withReservedConcurrency } from "#local/stack";
import type { EventSourceMappingDefinition } from "#local/template";

const stage = "itopts";
const routeQueue = `batchline-${stage}-llama-2-7b`;

const mapping = (queueName: string): EventSourceMappingDefinition => ({
  logicalId: "M", queueName, functionName: "f", batchSize: 100, maximumBatchingWindowSeconds: 1, maximumConcurrency: 2, reportBatchItemFailures: true, enabled: true,
});

describe("applyMappingOverrides", () => {
  it("replaces only the settings given, for the queue named", () => {
    const [first, second] = applyMappingOverrides([mapping("q1"), mapping("q2")], { q1: { batchSize: 1, maximumBatchingWindowSeconds: 0 } });
    expect(first).toMatchObject({ queueName: "q1", batchSize: 1, maximumBatchingWindowSeconds: 0, maximumConcurrency: 2 });
    expect(second).toEqual(mapping("q2"));
  });

  it("takes an undefined maximumConcurrency as AWS's default scaling", () => {
    const [m] = applyMappingOverrides([mapping("q1")], { q1: { maximumConcurrency: undefined } });
    expect(m?.maximumConcurrency).toBeUndefined();
    expect(applyMappingOverrides([mapping("q1")])).toEqual([mapping("q1")]);
  });

  it("refuses a queue with no mapping, and settings AWS would refuse, in AWS's words", () => {
    expect(() => applyMappingOverrides([mapping("q1")], { q9: { batchSize: 1 } })).toThrow(/no event source mapping reads queue q9/);
    expect(() => applyMappingOverrides([mapping("q1")], { q1: { maximumBatchingWindowSeconds: 0.5 } })).toThrow(/whole number/);
    expect(() => applyMappingOverrides([mapping("q1")], { q1: { batchSize: 0 } })).toThrow(
      "CREATE_FAILED: M (AWS::Lambda::EventSourceMapping) for queue q1: ValidationException: 1 validation error detected: Value '0' at 'batchSize' failed to satisfy constraint: Member must have value greater than or equal to 1",
    );
    expect(() => applyMappingOverrides([mapping("q1")], { q1: { maximumConcurrency: 1 } })).toThrow(
      "Value '1' at 'scalingConfig.maximumConcurrency' failed to satisfy constraint: Member must have value greater than or equal to 2",
    );
    expect(() => applyMappingOverrides([mapping("q1")], { q1: { maximumBatchingWindowSeconds: 0 } })).toThrow(
      "CREATE_FAILED: M (AWS::Lambda::EventSourceMapping) for queue q1: InvalidParameterValueException: Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10",
    );
  });

  it("checks the template's own mappings too, not only those overridden", () => {
    const refused = { ...mapping("q2"), maximumBatchingWindowSeconds: 0 };
    expect(() => applyMappingOverrides([mapping("q1"), refused], { q1: { batchSize: 10 } })).toThrow(/for queue q2: InvalidParameterValueException/);
    expect(() => applyMappingOverrides([{ ...mapping("q1"), functionResponseTypes: ["ReportEverything"] }])).toThrow(
      "Value '[ReportEverything]' at 'functionResponseTypes' failed to satisfy constraint",
    );
  });
});

describe("withReservedConcurrency", () => {
  it("runs at most the reserved number of a function's invocations at once, and the others' as they come", async () => {
    let running = 0;
    let most = 0;
    const gates: (() => void)[] = [];
    const invoke = withReservedConcurrency(
      async (functionName) => {
        if (functionName === "batchline-s-batcher") {
          most = Math.max(most, ++running);
          await new Promise<void>((resolve) => gates.push(resolve));
          running--;
        }
        return { ok: true } as never;
      },
      "batchline-s",
      { batcher: 1 },
    );
    const event = { Records: [] } as SQSEvent;
    const batchers = [invoke("batchline-s-batcher", event), invoke("batchline-s-batcher", event)];
    await expect(invoke("batchline-s-jobs", event)).resolves.toEqual({ ok: true });
    await expect.poll(() => gates.length).toBe(1);
    gates.shift()?.();
    await expect.poll(() => gates.length).toBe(1);
    gates.shift()?.();
    await Promise.all(batchers);
    expect(most).toBe(1);
  });

  it("refuses a reserved concurrency that is not a positive integer", () => {
    expect(() => withReservedConcurrency(async () => ({ ok: true }) as never, "p", { batcher: 0 })).toThrow(/reservedConcurrency: batcher: must be a positive integer/);
  });
});

describe("observedInvoker", () => {
  it("tells of each invocation as it starts, with its delivery, and when it answered, failed or never happened", async () => {
    const seen: PollerInvocation[] = [];
    const invoke = observedInvoker(async (functionName) => {
      expect(seen.at(-1)?.functionName).toBe(functionName);
      if (functionName === "down") throw new Error("connection refused");
      return { functionError: functionName === "failing" ? "Unhandled" : undefined, payload: "null" };
    }, (i) => seen.push(i));
    const event = { Records: [{ eventSourceARN: "arn:aws:sqs:us-east-1:000000000000:q" }, {}] } as SQSEvent;
    await invoke("ok", event);
    await invoke("failing", event);
    await expect(invoke("down", { Records: [] })).rejects.toThrow("connection refused");
    const told = await Promise.all(seen.map(async ({ functionName, queueArn, records, startedAt, ended }) => ({ functionName, queueArn, records, startedAt, ...(await ended) })));
    expect(told.map(({ functionName, queueArn, records, error }) => ({ functionName, queueArn, records, error }))).toEqual([
      { functionName: "ok", queueArn: "arn:aws:sqs:us-east-1:000000000000:q", records: 2, error: undefined },
      { functionName: "failing", queueArn: "arn:aws:sqs:us-east-1:000000000000:q", records: 2, error: "Unhandled" },
      { functionName: "down", queueArn: undefined, records: 0, error: "invoke" },
    ]);
    for (const i of told) expect(i.endedAt).toBeGreaterThanOrEqual(i.startedAt);
  });
});

describe("startStack options for the bench", () => {
  const stacks: Stack[] = [];
  let dir: string | undefined;
  afterEach(async () => {
    await Promise.all(stacks.splice(0).map((s) => s.stop()));
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("polls with the overridden mapping settings", async () => {
    const invoked = Promise.withResolvers<SQSEvent>();
    const stack = await startStack({
      stage,
      sagemaker: false,
      offline: false,
      mappingOverrides: { [routeQueue]: { batchSize: 1, maximumBatchingWindowSeconds: 0, maximumConcurrency: undefined } },
      invoke: async (_name, event) => {
        invoked.resolve(event);
        return { payload: "" };
      },
    });
    stacks.push(stack);
    expect(stack.mappings.find((m) => m.queueName === routeQueue)).toMatchObject({ batchSize: 1, maximumBatchingWindowSeconds: 0, maximumConcurrency: undefined, polling: true });
    const sqs = localSqsClient(stack.endpoints.sqs);
    const url = stack.queues.find((q) => q.name === routeQueue)?.url;
    await Promise.all(["one", "two"].map((body) => sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body }))));
    sqs.destroy();
    // Batch size 1: the first invocation has one record.
    expect((await invoked.promise).Records).toHaveLength(1);
  });

  it("fails to start with a mapping AWS refuses, in AWS's words: BatchSize 100 and no window", async () => {
    // A stage of its own: nothing of this test's may be left in the others' queues.
    const refusedStage = "itrefuse";
    const queue = `batchline-${refusedStage}-llama-2-7b`;
    const starting = startStack({
      stage: refusedStage,
      sagemaker: false,
      offline: false,
      pollers: false,
      mappingOverrides: { [queue]: { batchSize: 100, maximumBatchingWindowSeconds: 0 } },
    });
    await expect(starting).rejects.toThrow(
      `for queue ${queue}: InvalidParameterValueException: Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10`,
    );
    await expect(starting).rejects.toMatchObject({
      name: "EventSourceMappingRefused",
      refusal: { name: "InvalidParameterValueException", message: "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10" },
    });
  });

  it("fails to start with an override for a queue it does not have", async () => {
    await expect(startStack({ stage, sagemaker: false, offline: false, pollers: false, mappingOverrides: { nope: { batchSize: 1 } } })).rejects.toThrow(/queue nope/);
  });

  it("gives the emulator and the functions another routes file", async () => {
    dir = await mkdtemp(join(tmpdir(), "batchline-routes-"));
    const raw = parseYaml(await readFile(join(process.cwd(), "infra", "routes.yml"), "utf8")) as { components: Record<string, { engine: string }> };
    const component = raw.components["llama-2-7b-ic"];
    if (!component) throw new Error("no llama-2-7b-ic");
    component.engine = "lmi-dynamic";
    const routesFile = join(dir, "routes.yml");
    await writeFile(routesFile, stringifyYaml(raw));
    const stack = await startStack({ stage, offline: false, pollers: false, routesFile });
    stacks.push(stack);
    expect(stack.functionEnv.BATCHLINE_ROUTES_FILE).toBe(routesFile);
    const stats = await (await fetch(`${stack.endpoints.sagemaker}/_emulator/stats`)).json() as { components: { component: string; engine: string }[] };
    expect(stats.components.find((c) => c.component === "llama-2-7b-ic")?.engine).toBe("lmi-dynamic");
  });
});
