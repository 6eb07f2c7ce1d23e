import { describe, expect, it } from "vitest";
import { exportRouteTrace, predictRouteSettings } from "#shared/app/route-tuning";
import { ForbiddenError, NotFoundError, ValidationError } from "#shared/core/errors";
import { fullJob } from "../../contract/job-store.ts";
import { memoryDeps } from "../../helpers/fakes.ts";

const ops = { tenant: "ops", role: "admin" } as const;
const member = { tenant: "acme", role: "member" } as const;
const P = { throughput_rpm: expect.any(Number), p50_ms: expect.any(Number), p95_ms: expect.any(Number), p99_ms: expect.any(Number), gpu_busy: expect.any(Number), cost_per_million_tokens: expect.any(Number) };

describe("settings predictions and trace exports", () => {
  it("predicts the current and the proposed settings on a synthetic trace when the route had no jobs", async () => {
    const deps = memoryDeps();

    const answer = await predictRouteSettings(deps, ops, "llama-2-7b", { max_in_flight_per_copy: 8, copies: 2 });

    expect(answer).toEqual({ model: "llama-2-7b", window_s: 300, jobs: expect.any(Number), synthetic: true, current: P, proposed: P });
    expect(answer.jobs).toBeGreaterThan(200);
    // Two copies at 8 sequences each serve the same trace with a smaller batch: faster, dearer.
    expect(answer.proposed.p95_ms).toBeLessThan(answer.current.p95_ms ?? 0);
    expect(answer.proposed.cost_per_million_tokens).toBeGreaterThan(answer.current.cost_per_million_tokens ?? 0);
    // Nothing is stored: a prediction changes no setting.
    expect(deps.routeSettings.settings.size).toBe(0);
  });

  it("replays the route's jobs of the last five minutes when it has some, and exports them as a trace", async () => {
    const deps = memoryDeps();
    const now = deps.clock.now().getTime();
    const at = (ms: number) => new Date(now + ms).toISOString();
    const jobs = Array.from({ length: 40 }, (_, i) => fullJob(`job_${i}`, { created_at: at(-120_000 + i * 3000), lane: "interactive" }));
    await deps.jobs.create([...jobs, fullJob("job_old", { created_at: at(-600_000) })]);

    const answer = await predictRouteSettings(deps, ops, "llama-2-7b", {});
    const trace = await exportRouteTrace(deps, ops, "llama-2-7b", { minutes: "3" });

    expect(answer).toMatchObject({ jobs: 40, synthetic: false });
    expect(answer.proposed).toEqual(answer.current);
    expect(trace.jobs).toHaveLength(40);
    expect(trace.jobs[0]).toEqual({ at_ms: 60_000, prompt_tokens: 37, max_tokens: 64, lane: "interactive" });
  });

  it("checks the proposal as PUT does, and copies, naming the field; only admin keys; unknown models", async () => {
    const deps = memoryDeps();
    await expect(predictRouteSettings(deps, ops, "llama-2-7b", { max_in_flight_per_copy: 0 })).rejects.toThrow(ValidationError);
    await expect(predictRouteSettings(deps, ops, "llama-2-7b", { max_in_flight_per_copy: 0 })).rejects.toMatchObject({ field: "max_in_flight_per_copy" });
    await expect(predictRouteSettings(deps, ops, "llama-2-7b", { copies: 0 })).rejects.toMatchObject({ field: "copies" });
    await expect(predictRouteSettings(deps, ops, "llama-2-7b", { window: 3 })).rejects.toThrow(ValidationError);
    await expect(predictRouteSettings(deps, ops, "llama-2-7b", [])).rejects.toMatchObject({ field: "body" });
    await expect(predictRouteSettings(deps, member, "llama-2-7b", {})).rejects.toThrow(ForbiddenError);
    await expect(exportRouteTrace(deps, member, "llama-2-7b", {})).rejects.toThrow(ForbiddenError);
    await expect(predictRouteSettings(deps, ops, "gpt-9", {})).rejects.toThrow(NotFoundError);
    await expect(exportRouteTrace(deps, ops, "llama-2-7b", { minutes: "0" })).rejects.toMatchObject({ field: "minutes" });
  });
});
