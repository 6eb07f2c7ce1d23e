import { describe, expect, it } from "vitest";
import { countChunks, type ChunkTally } from "#shared/core/batches";
import { holdingsOf, slotOf } from "#shared/core/quotas";

const lines = (...numbers: number[]) => new Set(numbers);
const chunk = (slots: number, running: Set<number>, ended: Partial<ChunkTally["ended"]> = {}): ChunkTally => ({
  slots,
  running,
  ended: { succeeded: lines(), failed: lines(), cancelled: lines(), expired: lines(), ...ended },
});

describe("holdingsOf", () => {
  it("holds a job submitted alone by its id, and a batch's jobs by chunk of 100 lines, each line once", () => {
    // Act
    const holdings = holdingsOf([
      { job_id: "job_a" },
      { job_id: "b-1", batch: { batch_id: "b", line: 1 } },
      { job_id: "b-99", batch: { batch_id: "b", line: 99 } },
      { job_id: "b-100", batch: { batch_id: "b", line: 100 } },
      { job_id: "b-1", batch: { batch_id: "b", line: 1 } },
    ]);

    // Assess
    expect(holdings).toEqual([
      { id: "job_a", ended: undefined },
      { id: "b#0", chunk: { batch_id: "b", lines: [1, 99] }, ended: undefined },
      { id: "b#1", chunk: { batch_id: "b", lines: [100] }, ended: undefined },
    ]);
  });

  it("keeps the lines of a chunk apart by the status they ended with", () => {
    // Act
    const holdings = holdingsOf([
      { job_id: "b-1", batch: { batch_id: "b", line: 1 }, ended: "SUCCEEDED" },
      { job_id: "b-2", batch: { batch_id: "b", line: 2 }, ended: "FAILED" },
      { job_id: "b-3", batch: { batch_id: "b", line: 3 }, ended: "SUCCEEDED" },
    ]);

    // Assess
    expect(holdings.map((h) => [h.id, h.ended, h.chunk?.lines])).toEqual([
      ["b#0", "SUCCEEDED", [1, 3]],
      ["b#0", "FAILED", [2]],
    ]);
  });

  it("reads a stored job's slot, with its status only once it ended", () => {
    // Act
    const slots = [
      slotOf({ job_id: "j", batch_id: undefined, batch_line: undefined, status: "RUNNING" }),
      slotOf({ job_id: "k", batch_id: "b", batch_line: 7, status: "CANCELLED" }),
    ];

    // Assess
    expect(slots).toEqual([
      { job_id: "j", batch: undefined, ended: undefined },
      { job_id: "k", batch: { batch_id: "b", line: 7 }, ended: "CANCELLED" },
    ]);
  });
});

describe("countChunks", () => {
  it("counts each line once: by the status it ended with, as running if it started and did not end, the rest queued", () => {
    // Act
    const counts = countChunks(205, [
      chunk(99, lines(1, 2, 3, 4), { succeeded: lines(1, 2), cancelled: lines(4, 50) }),
      chunk(100, lines(150), { expired: lines(120) }),
      chunk(6, lines()),
    ]);

    // Assess: line 3 and 150 run; 1, 2, 4, 50, 120 ended
    expect(counts).toEqual({ total: 205, queued: 198, running: 2, succeeded: 2, failed: 0, cancelled: 2, expired: 1 });
  });
});
