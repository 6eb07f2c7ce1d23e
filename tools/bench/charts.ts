import { latencyOf, type Outcome } from "./outcome.ts";
import type { BenchReport } from "./report.ts";
import { lineChart, type Series } from "./svg.ts";

/** Per scenario, per run name (policies and "engine alone"): what happened to each request. */
export type RawRuns = ReadonlyMap<string, ReadonlyMap<string, readonly Outcome[]>>;

const ENGINE = "engine alone";

/** The bench's curves: name of the file under bench-results/ → its SVG. */
export function charts(report: BenchReport, raw: RawRuns): Map<string, string> {
  const files = new Map<string, string>();
  const runNames = [ENGINE, ...report.policies.map((p) => p.name)];
  // The 512+512 Poisson scenarios in order of load: the latency and throughput curves.
  const curve = report.scenarios.filter((s) => s.name === "ten-percent" || s.name === "poisson-400" || s.name === "saturated").toSorted((a, b) => a.offered_rpm - b.offered_rpm);
  const resultOf = (s: (typeof curve)[number], name: string) => (name === ENGINE ? s.engine_direct : s.policies.find((p) => p.name === name));

  if (curve.length > 0) {
    const latency: Series[] = runNames.flatMap((name) => [
      { name: `${name} p50`, points: curve.flatMap((s) => { const r = resultOf(s, name); return r ? [[s.offered_rpm, r.p50_ms / 1000] as const] : []; }) },
      { name: `${name} p95`, dashed: true, points: curve.flatMap((s) => { const r = resultOf(s, name); return r ? [[s.offered_rpm, r.p95_ms / 1000] as const] : []; }) },
    ]);
    // One color per run for its p50 and p95.
    const palette = ["#30343f", "#1b6ca8", "#d1495b", "#edae49", "#00798c", "#66a182", "#8e6c8a"];
    files.set(
      "latency.svg",
      lineChart({
        title: "End-to-end latency vs offered load (512+512, Poisson)",
        xLabel: "offered requests/min",
        yLabel: "latency, s (log)",
        logY: true,
        series: latency.map((s, i) => ({ ...s, color: palette[Math.floor(i / 2) % palette.length] })),
        width: 880,
        height: 480,
      }),
    );
    files.set(
      "throughput.svg",
      lineChart({
        title: "Throughput vs offered load (512+512, Poisson)",
        xLabel: "offered requests/min",
        yLabel: "answered requests/min",
        series: runNames.map((name) => ({ name, points: curve.flatMap((s) => { const r = resultOf(s, name); return r ? [[s.offered_rpm, r.throughput_rpm] as const] : []; }) })),
        hLines: report.engine_direct_rpm === null ? [] : [{ y: report.engine_direct_rpm, label: `engine ceiling (closed loop) ${report.engine_direct_rpm.toFixed(0)}/min` }],
      }),
    );
  }

  const at400 = raw.get("poisson-400");
  if (at400) {
    files.set(
      "latency-cdf-400.svg",
      lineChart({
        title: "Latency distribution at 400 requests/min",
        xLabel: "end-to-end latency, s",
        yLabel: "share of requests answered",
        series: runNames.flatMap((name) => {
          const outcomes = at400.get(name);
          if (!outcomes) return [];
          const latencies = outcomes.flatMap((o) => { const l = latencyOf(o); return l === undefined ? [] : [l / 1000]; }).toSorted((a, b) => a - b);
          return [{ name, points: latencies.map((l, i) => [l, (i + 1) / outcomes.length] as const) }];
        }),
      }),
    );
  }

  const saturated = raw.get("saturated");
  if (saturated) {
    const bucketS = 5;
    files.set(
      "saturated-timeline.svg",
      lineChart({
        title: `Answers per minute over time, saturated (${bucketS} s buckets)`,
        xLabel: "s since the trace started",
        yLabel: "answered requests/min",
        series: runNames.flatMap((name) => {
          const outcomes = saturated.get(name);
          if (!outcomes) return [];
          const counts = new Map<number, number>();
          for (const o of outcomes) if (o.status === "succeeded" && o.finishedMs !== undefined) {
            const b = Math.floor(o.finishedMs / 1000 / bucketS);
            counts.set(b, (counts.get(b) ?? 0) + 1);
          }
          const last = Math.max(0, ...counts.keys());
          return [{ name, points: Array.from({ length: last + 1 }, (_, b) => [(b + 0.5) * bucketS, ((counts.get(b) ?? 0) * 60) / bucketS] as const) }];
        }),
        hLines: report.engine_direct_rpm === null ? [] : [{ y: report.engine_direct_rpm, label: "engine ceiling" }],
      }),
    );
  }
  if (report.diurnal) files.set("diurnal-copies.svg", diurnalChart(report.diurnal));
  return files;
}

/** Copies held over the compressed day by each fleet, a step function, against the hour of the day it stands for. */
function diurnalChart(diurnal: NonNullable<BenchReport["diurnal"]>): string {
  const hour = (ms: number) => (ms * diurnal.compression) / 3_600_000;
  return lineChart({
    title: `GPU copies held over the day (compressed ${diurnal.compression}x)`,
    xLabel: "hour of the day",
    yLabel: "copies (warming, serving or draining)",
    series: diurnal.fleets.map((fleet) => ({
      name: `${fleet.name}: $${fleet.cost_per_million_tokens?.toFixed(2) ?? "-"}/1M tok`,
      points: fleet.copies_over_time.flatMap(([atMs, billed], i, all) => {
        const x = Math.min(24, Math.max(0, hour(atMs)));
        const before = i === 0 ? billed : (all[i - 1]?.[1] ?? billed);
        return [[x, before] as const, [x, billed] as const];
      }).concat([[24, fleet.copies_over_time.at(-1)?.[1] ?? 0] as const]),
    })),
  });
}
