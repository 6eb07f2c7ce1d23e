// bench-results/: the report as JSON and text, every request and batcher invocation, and the curves.
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { charts, type RawRuns } from "./charts.ts";
import type { InvocationLog } from "./phases.ts";
import { type BenchReport, formatReport } from "./report.ts";

/** Per scenario, per policy: its batcher invocations. */
export type Invocations = Map<string, ReadonlyMap<string, InvocationLog>>;

export async function writeOutputs(outDir: string, report: BenchReport, raw: RawRuns, invocations: Invocations, log: (line: string) => void): Promise<void> {
  const text = formatReport(report);
  process.stdout.write(`${text}\n`);
  await writeFile(join(outDir, "latest.json"), `${JSON.stringify(report, (_k, v: unknown) => (typeof v === "number" && !Number.isFinite(v) ? null : v), 2)}\n`);
  await writeFile(join(outDir, "latest.txt"), `${text}\n`);
  // Every request of every run, for a closer look, ms after the trace started: [arrival, answered,
  // queue wait, GPU batch size, status, POST answered, submitted_at, started_at, finished_at,
  // start estimated at submit] (null where unknown; the last five are the pipeline's only).
  const ms = (v: number | undefined) => (v === undefined ? null : Math.round(v));
  const perRequest = Object.fromEntries(
    [...raw].map(([scenario, runs]) => [
      scenario,
      Object.fromEntries(
        [...runs].map(([name, outcomes]) => [
          name,
          outcomes.map((o) => [
            Math.round(o.arrivalMs), ms(o.finishedMs), o.queueWaitMs ?? null, o.gpuBatchSize ?? null, o.status,
            ms(o.timeline?.acceptedMs), ms(o.timeline?.submittedMs), ms(o.timeline?.startedMs), ms(o.timeline?.doneMs), ms(o.timeline?.estimatedStartMs),
          ]),
        ]),
      ),
    ]),
  );
  await writeFile(join(outDir, "requests.json"), `${JSON.stringify(perRequest)}\n`);
  // The batcher invocations of every pipeline run, [start ms, end ms, messages delivered, FunctionError | null,
  // lane], and when its trace started (wall clock).
  const perInvocation = Object.fromEntries([...invocations].map(([scenario, runs]) => [scenario, Object.fromEntries(runs)]));
  await writeFile(join(outDir, "invocations.json"), `${JSON.stringify(perInvocation)}\n`);
  const svgs = charts(report, raw);
  for (const [name, svg] of svgs) await writeFile(join(outDir, name), svg);
  log(`wrote ${join(outDir, "latest.json")}, latest.txt, requests.json, invocations.json${[...svgs.keys()].map((n) => `, ${n}`).join("")}`);
}
