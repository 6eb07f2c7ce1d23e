import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Stack } from "#local/stack";
import { pollUntil } from "../helpers/local-aws.ts";
import { componentIn, startRoutesStack, type RoutesStack } from "../helpers/routes-stack.ts";

/**
 * Scale from zero and back, end to end on the embedded stack (real SDK, real servers): a job
 * submitted while its component has no copy waits in SQS saying it waits for warming, the step
 * policy on NoCapacityInvocationFailures wakes the component, the job succeeds, and with no traffic
 * target tracking takes the component back to zero. Every scaling delay runs 100 times faster
 * (a 60 s warm-up and alarm minute take 0.6 s, the 15 minutes before a scale-in 9 s).
 */
const model = "llama-2-7b";
const component = "llama-2-7b-ic";
const TIME_COMPRESSION = 100;

let running: RoutesStack;
let stack: Stack;
let api: RoutesStack["api"];

beforeAll(async () => {
  running = await startRoutesStack("itscale", (raw) => {
    Object.assign(componentIn(raw, component), {
      copies: 0,
      warmup_seconds: 60,
      autoscaling: { min_copies: 0, max_copies: 1, target_concurrent_requests_per_copy: 4, scale_out_cooldown_seconds: 60, scale_in_cooldown_seconds: 60 },
    });
  }, { scalingTimeCompression: TIME_COMPRESSION });
  ({ stack, api } = running);
});

afterAll(async () => {
  await running?.stop();
});

describe("autoscaling on the embedded stack", () => {
  it("runs a job that arrives at zero copies once the step policy has woken its component, then scales in to zero", { timeout: 180_000 }, async () => {
    // Prepare: a job told to wait looks again after a second, not the default 30.
    const scaling = stack.sagemaker?.scaling;
    if (!scaling) throw new Error("the stack runs no SageMaker emulator");
    const causes = () => scaling.activities(component).map((a) => `${a.cause} ${a.fromCopies}->${a.toCopies}`);
    expect((await api("PUT", `/v1/routes/${model}/settings`, { warming_recheck_seconds: 1 })).status).toBe(200);
    const atStart = scaling.desiredCopies(component);

    // Act
    const submitted = await api("POST", "/v1/jobs", { model, prompt: "Write a haiku about cold starts.", max_tokens: 8 });
    const jobId: string = submitted.json.job_id;
    const job = () => api("GET", `/v1/jobs/${jobId}`).then((r) => r.json);
    const waiting = await pollUntil(async () => {
      const seen = await job();
      return seen.waiting_reason === "warming" ? seen : undefined;
    }, "the job to wait for warming", 60_000);
    await pollUntil(async () => (causes().length > 0 ? true : undefined), "the step policy to wake the component", 30_000);
    const done = await pollUntil(async () => {
      const seen = await job();
      return ["SUCCEEDED", "FAILED", "EXPIRED", "CANCELLED"].includes(seen.status) ? seen : undefined;
    }, "the job to finish", 90_000);
    await pollUntil(async () => (scaling.desiredCopies(component) === 0 && causes().at(-1)?.startsWith("target-tracking-scale-in") ? true : undefined), "the idle component back at zero", 60_000);

    // Assess
    expect(atStart).toBe(0);
    expect(submitted.status).toBe(202);
    // Claimed or not, a job that waits in the queue for a copy is QUEUED.
    expect(waiting).toMatchObject({ waiting_reason: "warming", status: "QUEUED" });
    expect(done).toMatchObject({ status: "SUCCEEDED", result: { completion_tokens: 8 } });
    expect(done.waiting_reason).toBeUndefined();
    expect(causes()[0]).toBe("step-scaling-no-capacity 0->1");
    expect(causes().at(-1)).toBe("target-tracking-scale-in 1->0");
    const stats = stack.sagemaker?.stats().components.find((c) => c.component === component);
    expect(stats?.noCapacityInvocationFailures).toBeGreaterThanOrEqual(1);
    expect(stats?.billing.gpuSeconds).toBeGreaterThan(0);
  });
});
