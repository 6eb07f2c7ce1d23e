import { expect, it } from "vitest";
import type { FinishedJobIndex, JobStore } from "#shared/ports";
import { testBreakdown } from "../helpers/breakdown.ts";
import { uniqueSuffix } from "../helpers/local-aws.ts";
import { fullJob } from "./job-store.ts";

/** A job store and the finished-jobs index over the same jobs. */
export type FinishedJobsUnderTest = { readonly store: JobStore; readonly index: FinishedJobIndex };

const t = (s: number) => new Date(Date.UTC(2026, 10, 27, 12, 0, s));
const placement = { gpu_batch_id: "gpu_1", gpu_batch_size: 1, component: "llama-2-7b-ic" };

/** What every FinishedJobIndex does: the DynamoDB index is the reference, the memory one must match it. */
export function finishedJobIndexContract(make: () => Promise<FinishedJobsUnderTest>): void {
  /** Five jobs of llama-2-7b finished at 10, 20 .. 50 s, each claimed 5 s before; their ids in that order. */
  async function fiveFinished(store: JobStore): Promise<string[]> {
    const ids = [1, 2, 3, 4, 5].map((i) => `job_${uniqueSuffix()}_${i}`);
    await store.create(ids.map((id) => fullJob(id)));
    for (const [i, id] of ids.entries()) {
      await store.claim(id, placement, t(i * 10 + 5));
      const result = { text: "ok", prompt_tokens: 37, completion_tokens: 10 + i, finish_reason: "length" } as const;
      await store.finish(id, 1, { status: "SUCCEEDED", result, breakdown: testBreakdown({ prompt_tokens: 37, generated_tokens: 10 + i }) }, t(i * 10 + 10));
    }
    return ids;
  }

  it("gives a route's jobs finished since a time, newest first, with what the metrics read of them", async () => {
    // Prepare
    const { store, index } = await make();
    const ids = await fiveFinished(store);

    // Act
    const recent = await index.finishedSince("llama-2-7b", t(30), 100);

    // Assess
    expect(recent).toEqual({ jobs: [ids[4], ids[3], ids[2]].map((id) => expect.objectContaining({ job_id: id, status: "SUCCEEDED" })), truncated: false });
    expect(recent.jobs[0]).toEqual({
      job_id: ids[4], status: "SUCCEEDED", created_at: fullJob("x").created_at, started_at: t(45).toISOString(), finished_at: t(50).toISOString(),
      breakdown: testBreakdown({ prompt_tokens: 37, generated_tokens: 14 }), component: "llama-2-7b-ic",
    });
  });

  it("leaves out unfinished jobs and other routes', and keeps an ended job's error", async () => {
    // Prepare
    const { store, index } = await make();
    const [running, other] = [`job_${uniqueSuffix()}_running`, `job_${uniqueSuffix()}_other`];
    await store.create([fullJob(running), fullJob(other, { model: "llama-3-8b" })]);
    await store.claim(running, placement, t(1));
    await store.endUnfinished(other, { status: "FAILED", error: { code: "model_error", message: "x" } }, t(45));

    // Act
    const [mine, theirs] = await Promise.all([index.finishedSince("llama-2-7b", t(0), 10), index.finishedSince("llama-3-8b", t(0), 10)]);

    // Assess
    expect(mine).toEqual({ jobs: [], truncated: false });
    expect(theirs.jobs.map((j) => [j.job_id, j.status, j.error])).toEqual([[other, "FAILED", { code: "model_error", message: "x" }]]);
  });

  it("stops at the limit, newest first, and says there were more", async () => {
    // Prepare
    const { store, index } = await make();
    const ids = await fiveFinished(store);

    // Act
    const bounded = await index.finishedSince("llama-2-7b", t(0), 2);

    // Assess
    expect(bounded.jobs.map((j) => j.job_id)).toEqual([ids[4], ids[3]]);
    expect(bounded.truncated).toBe(true);
  });
}
