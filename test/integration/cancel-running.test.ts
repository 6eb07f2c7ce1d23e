import { describe, expect, it } from "vitest";
import { cancelJob } from "#shared/app/cancel";
import { processDelivery } from "#shared/app/process-delivery";
import { submitJob } from "#shared/app/submit";
import { DynamoDbCapacityLedger } from "#shared/aws/dynamodb-capacity-ledger";
import { systemClock } from "#shared/aws/deps";
import { SageMakerInvoker } from "#shared/aws/sagemaker-invoker";
import { defaultRouteSettings } from "#shared/core/route-settings";
import { sleep } from "#shared/sleep";
import { dynaliteTables } from "../contract/fixtures.ts";
import { memoryDeps } from "../helpers/fakes.ts";
import { pollUntil } from "../helpers/local-aws.ts";
import { componentOf, emulatorForTests, routesCatalog } from "../helpers/sagemaker.ts";

const catalog = routesCatalog();
const vllm = componentOf(catalog, "llama-3-8b-ic");
const ROUTE = "llama-3-8b";

// A cancel of a running job, in real time, through the real ledger (dynalite) and the real
// invoker (the SageMaker emulator at time scale 1): when the batcher gives the job's room back,
// when the room is used again, and when the engine's sequence is gone.
describe("cancelling a running vLLM job, through DynamoDB and the SageMaker emulator", () => {
  const env = emulatorForTests({ catalog, timeScale: 1 });
  const table = dynaliteTables();

  async function pipeline(jobs: number) {
    const deps = { ...memoryDeps(catalog), clock: systemClock, sleep };
    const ledger = new DynamoDbCapacityLedger(await table("CapacityTable"));
    const invoker = new SageMakerInvoker({ client: env.sagemaker, catalog });
    const route = catalog.routes.get(ROUTE);
    if (!route) throw new Error(`no route ${ROUTE}`);
    // One sequence per copy: with more jobs than copies, one waits for room.
    await deps.routeSettings.put(ROUTE, { ...defaultRouteSettings(route), top_up: false, max_in_flight_per_copy: 1 }, new Date());
    const ids: string[] = [];
    for (let i = 0; i < jobs; i++) ids.push((await submitJob(deps, "acme", { model: ROUTE, prompt: `story ${i}`, max_tokens: 2000 })).job.job_id);
    // When each call started and when its signal gave it up, by prompt.
    const calls = new Map<string, { startedAt: number; abortedAt?: number }>();
    const recording: typeof invoker.invoke = (component, inputs, options = {}) => {
      const call: { startedAt: number; abortedAt?: number } = { startedAt: performance.now() };
      for (const input of inputs) calls.set(input.prompt, call);
      options.signal?.addEventListener("abort", () => (call.abortedAt = performance.now()), { once: true });
      return invoker.invoke(component, inputs, options);
    };
    const batcherDeps = { ...deps, ledger, invoker: Object.assign(Object.create(invoker) as SageMakerInvoker, { invoke: recording }) };
    const running = processDelivery(batcherDeps, deps.queue.takeDelivery(ROUTE, jobs), { topUpUntil: new Date(Date.now() + 60_000) });
    return { deps: batcherDeps, ids, calls, running };
  }

  const copies = () => env.emulator.stats().components.find((c) => c.component === vllm.name)?.copies ?? [];
  const runningSequences = () => copies().reduce((sum, c) => sum + c.runningSequences, 0);

  it("gives the room to the waiting job and frees the engine's sequence, within one 100 ms read plus a round trip", async ({ annotate }) => {
    // Prepare: both copies run a job; the third waits for room.
    const { deps, ids, calls, running } = await pipeline(vllm.copies + 1);
    await pollUntil(async () => (runningSequences() === vllm.copies ? true : undefined), "both copies running a job");
    const [first] = [...calls.keys()];
    const cancelled = ids[Number(first?.split(" ")[1])] ?? "";

    // Act
    const cancelAt = performance.now();
    await cancelJob(deps, "acme", cancelled);
    const waitingPrompt = await pollUntil(async () => [...calls.keys()].find((p) => p !== first && (calls.get(p)?.startedAt ?? 0) > cancelAt), "the waiting job to start");
    const engineFreedAt = await pollUntil(async () => (copies().reduce((sum, c) => sum + c.abandoned, 0) === 1 ? performance.now() : undefined), "the engine to drop the sequence");

    // Assess
    const call = calls.get(first ?? "");
    const roomFreedMs = (call?.abortedAt ?? Number.NaN) - cancelAt;
    const reusedMs = (calls.get(waitingPrompt)?.startedAt ?? Number.NaN) - cancelAt;
    await annotate(`cancel → room freed ${roomFreedMs.toFixed(0)} ms, → waiting job started ${reusedMs.toFixed(0)} ms, → engine dropped the sequence ${(engineFreedAt - cancelAt).toFixed(0)} ms`);
    expect(roomFreedMs).toBeGreaterThan(0);
    expect(reusedMs).toBeGreaterThanOrEqual(roomFreedMs);
    expect(deps.jobs.jobs.get(cancelled)?.status).toBe("CANCELLED");
    expect((await deps.ledger.others(vllm.name, "anyone", new Date())).cancelled).toEqual([]);
    for (const id of ids.filter((id) => id !== cancelled)) await cancelJob(deps, "acme", id);
    const report = await running;
    expect(report.retry).toEqual([]);
    expect(deps.jobs.finishes).toEqual([]);
  });

  it("frees the room within one 500 ms read plus a round trip when no job waits, and the batcher ends without the answer", async ({ annotate }) => {
    // Prepare
    const { deps, ids, calls, running } = await pipeline(1);
    await pollUntil(async () => (runningSequences() === 1 ? true : undefined), "the copy running the job");

    // Act
    const cancelAt = performance.now();
    await cancelJob(deps, "acme", ids[0] ?? "");
    const report = await running;
    const endedAt = performance.now();

    // Assess
    const roomFreedMs = ([...calls.values()][0]?.abortedAt ?? Number.NaN) - cancelAt;
    await annotate(`cancel → room freed ${roomFreedMs.toFixed(0)} ms, → batcher done ${(endedAt - cancelAt).toFixed(0)} ms`);
    expect(roomFreedMs).toBeGreaterThan(0);
    expect(report.retry).toEqual([]);
    await pollUntil(async () => (runningSequences() === 0 ? true : undefined), "the engine to drop the sequence");
  });
});
