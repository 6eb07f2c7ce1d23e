import uPlot from "uplot";
import type { ChartSpec } from "./series.ts";

/** One uPlot chart per spec: a time axis, one line per series, a legend with the values under the cursor. */
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#4b5563"];

export type Chart = { update(columns: uPlot.AlignedData): void; resize(width: number): void };

export function createChart(host: HTMLElement, spec: ChartSpec, width: number): Chart {
  const options: uPlot.Options = {
    title: `${spec.title} (${spec.unit})`,
    width,
    height: 180,
    series: [{}, ...spec.series.map((s, i) => ({ label: s.label, stroke: COLORS[i % COLORS.length] ?? "#000", width: 2, spanGaps: false }))],
    axes: [{}, { size: 60 }],
    scales: { x: { time: true } },
  };
  const plot = new uPlot(options, [[], ...spec.series.map(() => [])], host);
  return {
    update: (columns) => plot.setData(columns),
    resize: (w) => plot.setSize({ width: w, height: 180 }),
  };
}
