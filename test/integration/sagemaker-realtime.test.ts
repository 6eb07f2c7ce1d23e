import { describe, expect, it } from "vitest";
import { scaledClock } from "#local/sagemaker/clock";
import { createComponentEngine, type Outcome } from "#local/sagemaker/component";
import { componentOf, routesCatalog } from "../helpers/sagemaker.ts";

/**
 * The rolling engine against the calibration anchors of docs/calibration.md (Llama-2-7B on an
 * H100, 512 prompt + 512 new tokens): its own simulated times, and the wall-clock times a real
 * clock gives them. The three batches run at once, each on a copy of its own, to keep the wall
 * time of the test to the longest batch.
 */
const rolling = componentOf(routesCatalog(), "llama-2-7b-ic");
const anchors = [
  { batch: 1, seconds: 3.1 },
  { batch: 16, seconds: 4.3 },
  { batch: 64, seconds: 8.2 },
];

async function runBatches(timeScale: number) {
  const clock = scaledClock(timeScale);
  try {
    return await Promise.all(
      anchors.map(async ({ batch, seconds }) => {
        const engine = createComponentEngine(rolling, { clock });
        engine.addCopy({ instance: 0, gpus: [0] }, 0);
        const started = performance.now();
        const outcomes = await Promise.all(
          Array.from({ length: batch }, () => {
            const routed = engine.invoke({ sequences: [{ promptTokens: 512, newTokens: 512, maxNewTokens: 512 }] });
            if (routed.kind !== "accepted") throw new Error("the queue refused a request");
            return routed.outcome;
          }),
        );
        const wallMs = performance.now() - started;
        const done = outcomes.filter((o): o is Extract<Outcome, { kind: "done" }> => o.kind === "done");
        const simulatedMs = Math.max(...done.map((o) => o.finishedMs)) - Math.min(...done.map((o) => o.arrivedMs));
        return { batch, seconds, done: done.length, simulatedMs, wallMs };
      }),
    );
  } finally {
    clock.dispose();
  }
}

describe("the rolling engine against the H100 calibration table", () => {
  it("takes 3.1 s, 4.3 s and 8.2 s (±5%) for 1, 16 and 64 requests, and as long on the wall clock at time scale 1", async () => {
    // Act
    const runs = await runBatches(1);

    // Assess
    for (const run of runs) {
      expect(run.done).toBe(run.batch);
      expect(Math.abs(run.simulatedMs / 1000 / run.seconds - 1)).toBeLessThan(0.05);
      // A loaded machine may add a little to the wall time, never take any away.
      expect(run.wallMs).toBeGreaterThanOrEqual(run.simulatedMs);
      expect(run.wallMs).toBeLessThan(run.simulatedMs * 1.1 + 300);
    }
  });

  it("scales the wall-clock times with the time scale, the simulated ones staying the same", async () => {
    // Act
    const runs = await runBatches(20);

    // Assess
    for (const run of runs) {
      expect(Math.abs(run.simulatedMs / 1000 / run.seconds - 1)).toBeLessThan(0.05);
      expect(run.wallMs).toBeGreaterThanOrEqual(run.simulatedMs / 20);
      expect(run.wallMs).toBeLessThan((run.simulatedMs / 20) * 1.1 + 300);
    }
  });
});
