import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Stack } from "#local/stack";
import { pollUntil } from "../helpers/local-aws.ts";
import { componentIn, startRoutesStack, type RoutesStack, type RoutesYaml } from "../helpers/routes-stack.ts";

/**
 * A component that never becomes ready, end to end on the embedded stack (real SDK, real servers):
 * at zero copies with no autoscaler to wake it, SageMaker refuses every call for lack of capacity,
 * and its jobs wait in SQS for warming. Past the route's max_warming_wait_seconds they end FAILED
 * with component_not_ready instead of being requeued forever.
 */
const model = "llama-2-7b";
const component = "llama-2-7b-ic";
const MAX_WAIT_SECONDS = 4;

let running: RoutesStack;
let stack: Stack;
let api: RoutesStack["api"];

beforeAll(async () => {
  const atZero = (raw: RoutesYaml) => {
    const routed = componentIn(raw, component);
    Object.assign(routed, { copies: 0, autoscaling: { ...(routed["autoscaling"] as Record<string, unknown>), min_copies: 0 } });
  };
  // No autoscaler: nothing answers the NoCapacityInvocationFailures alarm, so no copy ever starts.
  running = await startRoutesStack("itwarm", atZero, { autoscaling: false });
  ({ stack, api } = running);
});

afterAll(async () => {
  await running?.stop();
});

describe("a component that never becomes ready, on the embedded stack", () => {
  it("ends its jobs FAILED component_not_ready once max_warming_wait_seconds have passed", { timeout: 120_000 }, async () => {
    // Prepare: look again every second, give up after a few.
    const settings = await api("PUT", `/v1/routes/${model}/settings`, { warming_recheck_seconds: 1, max_warming_wait_seconds: MAX_WAIT_SECONDS });
    expect(settings.status).toBe(200);
    expect(settings.json.settings).toMatchObject({ max_warming_wait_seconds: MAX_WAIT_SECONDS });

    // Act
    const submitted = await Promise.all([1, 2].map((i) => api("POST", "/v1/jobs", { model, prompt: `Write haiku ${i} about cold starts.`, max_tokens: 8 })));
    const ids: string[] = submitted.map((s) => s.json.job_id);
    const job = (id: string) => api("GET", `/v1/jobs/${id}`).then((r) => r.json);
    const waiting = await pollUntil(async () => {
      const seen = await job(ids[0] ?? "");
      return seen.waiting_reason === "warming" ? seen : undefined;
    }, "the job to wait for warming", 60_000);
    const ended = await pollUntil(async () => {
      const seen = await Promise.all(ids.map(job));
      return seen.every((j) => j.status !== "QUEUED" && j.status !== "RUNNING") ? seen : undefined;
    }, "the jobs to end", 90_000);

    // Assess
    expect(submitted.map((s) => s.status)).toEqual([202, 202]);
    expect(waiting).toMatchObject({ status: "QUEUED", waiting_reason: "warming" });
    for (const j of ended) {
      expect(j).toMatchObject({ status: "FAILED", error: { code: "component_not_ready" } });
      expect(j.error.message).toMatch(new RegExp(`^no copy of ${component} became ready in \\d+ s of waiting \\(max_warming_wait_seconds: ${MAX_WAIT_SECONDS}\\)$`));
      const waitedSeconds = Number(/in (\d+) s/.exec(j.error.message)?.[1]);
      expect(waitedSeconds).toBeGreaterThanOrEqual(MAX_WAIT_SECONDS);
    }
    const stats = stack.sagemaker?.stats().components.find((c) => c.component === component);
    expect(stats?.noCapacityInvocationFailures).toBeGreaterThanOrEqual(1);
    expect(stack.sagemaker?.scaling.desiredCopies(component)).toBe(0);
  });
});
