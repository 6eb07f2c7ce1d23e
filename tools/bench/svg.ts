/**
 * Line charts as hand-written SVG: axes, ticks, a legend, linear or log scales. Enough for the
 * bench's curves with no plotting library.
 */
export type Series = {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
  readonly dashed?: boolean;
  readonly color?: string;
};

export type ChartOptions = {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly Series[];
  readonly logY?: boolean;
  /** Horizontal reference lines (a ceiling, a target). */
  readonly hLines?: readonly { readonly y: number; readonly label: string }[];
  readonly width?: number;
  readonly height?: number;
};

const PALETTE = ["#1b6ca8", "#d1495b", "#edae49", "#00798c", "#66a182", "#8e6c8a", "#30343f"];

export function escapeXml(text: string): string {
  return text.replace(/[<>&"']/g, (c) => ({ "<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;" })[c] ?? c);
}

/** About five round tick values covering [low, high]. */
export function linearTicks(low: number, high: number, count = 5): number[] {
  if (!(high > low)) return [low];
  const raw = (high - low) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 2.5, 5, 10].find((m) => m * magnitude >= raw) ?? 10) * magnitude;
  const ticks: number[] = [];
  for (let v = Math.ceil(low / step) * step; v <= high + step * 1e-9; v += step) ticks.push(Number(v.toPrecision(12)));
  return ticks;
}

function logTicks(low: number, high: number): number[] {
  const ticks: number[] = [];
  for (let e = Math.floor(Math.log10(low)); e <= Math.ceil(Math.log10(high)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= low && v <= high) ticks.push(v);
    }
  }
  return ticks;
}

const label = (v: number) => (Math.abs(v) >= 1000 ? `${Number((v / 1000).toPrecision(3))}k` : String(Number(v.toPrecision(3))));

export function lineChart(options: ChartOptions): string {
  const width = options.width ?? 760;
  const height = options.height ?? 440;
  const margin = { left: 70, right: 200, top: 40, bottom: 55 };
  const plotW = width - margin.left - margin.right;
  const plotH = height - margin.top - margin.bottom;
  const points = options.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!options.logY || y > 0));
  const ys = [...points.map(([, y]) => y), ...(options.hLines ?? []).map((h) => h.y)];
  const xs = points.map(([x]) => x);
  const xMin = Math.min(0, ...xs);
  const xMax = Math.max(1, ...xs);
  let yMin = options.logY ? Math.min(...ys.filter((y) => y > 0), 1) : Math.min(0, ...ys);
  let yMax = Math.max(1, ...ys);
  if (options.logY) {
    yMin = 10 ** Math.floor(Math.log10(yMin));
    yMax = 10 ** Math.ceil(Math.log10(yMax));
  } else {
    yMax *= 1.05;
  }
  const round = (v: number) => Math.round(v * 10) / 10;
  const sx = (x: number) => round(margin.left + ((x - xMin) / (xMax - xMin)) * plotW);
  const sy = (y: number) =>
    round(margin.top + plotH - (options.logY ? (Math.log10(y) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin)) : (y - yMin) / (yMax - yMin)) * plotH);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(options.title)}</text>`,
  ];
  for (const t of linearTicks(xMin, xMax)) {
    out.push(`<line x1="${sx(t)}" x2="${sx(t)}" y1="${margin.top}" y2="${margin.top + plotH}" stroke="#eee"/>`);
    out.push(`<text x="${sx(t)}" y="${margin.top + plotH + 18}" text-anchor="middle">${label(t)}</text>`);
  }
  for (const t of options.logY ? logTicks(yMin, yMax) : linearTicks(yMin, yMax)) {
    out.push(`<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${sy(t)}" y2="${sy(t)}" stroke="#eee"/>`);
    out.push(`<text x="${margin.left - 8}" y="${sy(t) + 4}" text-anchor="end">${label(t)}</text>`);
  }
  out.push(`<rect x="${margin.left}" y="${margin.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${margin.left + plotW / 2}" y="${height - 12}" text-anchor="middle">${escapeXml(options.xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${margin.top + plotH / 2}) rotate(-90)" text-anchor="middle">${escapeXml(options.yLabel)}</text>`);
  for (const h of options.hLines ?? []) {
    out.push(`<line x1="${margin.left}" x2="${margin.left + plotW}" y1="${sy(h.y)}" y2="${sy(h.y)}" stroke="#555" stroke-dasharray="2 3"/>`);
    out.push(`<text x="${margin.left + 4}" y="${sy(h.y) - 4}" fill="#555">${escapeXml(h.label)}</text>`);
  }
  options.series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length];
    const visible = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y) && (!options.logY || y > 0));
    const dash = s.dashed ? ` stroke-dasharray="6 4"` : "";
    if (visible.length > 1) {
      const d = visible.map(([x, y], j) => `${j === 0 ? "M" : "L"}${sx(x)},${sy(y)}`).join(" ");
      out.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="2"${dash}/>`);
    }
    if (visible.length <= 12) for (const [x, y] of visible) out.push(`<circle cx="${sx(x)}" cy="${sy(y)}" r="3" fill="${color}"/>`);
    const ly = margin.top + 10 + i * 18;
    out.push(`<line x1="${width - margin.right + 12}" x2="${width - margin.right + 36}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="2"${dash}/>`);
    out.push(`<text x="${width - margin.right + 42}" y="${ly + 4}">${escapeXml(s.name)}</text>`);
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
