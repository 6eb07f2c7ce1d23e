import { afterEach, describe, expect, it, vi } from "vitest";
import { copyRecordingFleet, JobOutcomeTally, OutcomeRecordingJobStore } from "#shared/app/job-outcomes";
import type { JobRecord } from "#shared/core/jobs";
import { publishOutcomes } from "#shared/observability";
import { defaultCatalog, MemoryJobStore, SettableFleet } from "../../helpers/fakes.ts";

const base = { tenant: "acme", model: "llama-2-7b", request: { prompt: "hi", max_tokens: 8 }, prompt_tokens: 2, priority: 5, attempt: 0, expires_at: 9e9 } as const;
const job = (id: string, extra: Partial<JobRecord>): JobRecord => ({ ...base, job_id: id, status: "QUEUED", created_at: "2026-01-01T00:00:00.000Z", ...extra });

afterEach(() => vi.restoreAllMocks());

describe("job outcome tally", () => {
  it("counts what a store finishes or ends, once: not a write another caller made first", async () => {
    const tally = new JobOutcomeTally();
    const inner = new MemoryJobStore();
    const store = new OutcomeRecordingJobStore(inner, tally);
    await store.create([job("a", {}), job("b", {}), job("c", {})]);
    await store.claim("a", { gpu_batch_id: "g", gpu_batch_size: 1, component: "llama-2-7b-ic" }, new Date("2026-01-01T00:00:02Z"));
    await store.finish("a", 1, { status: "SUCCEEDED", result: { text: "x", prompt_tokens: 2, completion_tokens: 8, finish_reason: "length" } }, new Date("2026-01-01T00:00:05Z"));
    await store.endUnfinished("b", { status: "EXPIRED", error: { code: "deadline_passed", message: "late" } }, new Date("2026-01-01T00:00:03Z"));
    await store.endUnfinished("c", { status: "CANCELLED", error: { code: "cancelled", message: "by owner" } }, new Date("2026-01-01T00:00:03Z"));
    // Already finished: the fenced write returns nothing, and nothing is counted twice.
    await store.endUnfinished("b", { status: "FAILED", error: { code: "dead_letter", message: "x" } }, new Date("2026-01-01T00:00:04Z"));
    const report = tally.drain();
    expect(report.routes.get("llama-2-7b")).toEqual({ succeeded: 1, errorsByKind: { deadline_passed: 1 }, generatedTokens: 8, queueWaitMs: [2000], inferenceMs: [3000], endToEndMs: [5000] });
    expect(tally.drain().routes.size).toBe(0);
  });

  it("notes the copies each component wants as the batcher reads them", async () => {
    const tally = new JobOutcomeTally();
    const catalog = defaultCatalog();
    const component = [...catalog.components.values()][0]!;
    const fleet = new SettableFleet();
    fleet.counts.set(component.name, { current: 1, desired: 2 });
    await copyRecordingFleet(fleet, tally).copies(component);
    expect([...tally.drain().desiredCopies]).toEqual([[component.name, 2]]);
  });
});

describe("EMF of the outcomes", () => {
  it("publishes one line per route with the job metrics, one per error kind and one per component, with the Stack dimension", () => {
    const lines: string[] = [];
    vi.spyOn(process.stdout, "write").mockImplementation((chunk: unknown) => {
      lines.push(String(chunk));
      return true;
    });
    const tally = new JobOutcomeTally();
    tally.record(job("a", { status: "SUCCEEDED", started_at: "2026-01-01T00:00:01.000Z", finished_at: "2026-01-01T00:00:04.000Z", result: { text: "x", prompt_tokens: 2, completion_tokens: 5, finish_reason: "stop" } }));
    tally.record(job("b", { status: "FAILED", finished_at: "2026-01-01T00:00:04.000Z", error: { code: "model_error", message: "m" } }));
    publishOutcomes(tally.drain(), "batchline-dev");
    const emf = lines.filter((l) => l.includes("_aws")).map((l) => JSON.parse(l) as Record<string, any>);
    const route = emf.find((e) => e.JobsSucceeded !== undefined)!;
    expect(route._aws.CloudWatchMetrics[0].Namespace).toBe("batchline");
    expect(route._aws.CloudWatchMetrics[0].Dimensions[0]).toEqual(expect.arrayContaining(["service", "Stack", "Route"]));
    expect(route).toMatchObject({ service: "batchline", Stack: "batchline-dev", Route: "llama-2-7b", JobsSucceeded: 1, JobErrors: 1, GeneratedTokens: 5, QueueWaitMs: 1000, InferenceMs: 3000, EndToEndMs: 4000 });
    expect(emf.find((e) => e.JobErrorsByKind !== undefined)).toMatchObject({ Route: "llama-2-7b", ErrorKind: "model_error", JobErrorsByKind: 1 });
  });
});
