import type { PredictedRun, SettingsPrediction } from "../../shared/app/route-tuning.ts";
import type { RouteSettings } from "../../shared/core/route-settings.ts";

/**
 * The window settings the page lets ops change, and what it sends: only the fields changed, as
 * the API takes them (`PUT /v1/routes/{model}/settings` and its `/predict`), so the API's own
 * checks (the route's limits) answer for a bad value. No DOM here.
 */

export type SettingField =
  | { readonly name: keyof RouteSettings; readonly label: string; readonly kind: "number" }
  | { readonly name: keyof RouteSettings; readonly label: string; readonly kind: "boolean" }
  | { readonly name: keyof RouteSettings; readonly label: string; readonly kind: "choice"; readonly choices: readonly string[] };

export const SETTING_FIELDS: readonly SettingField[] = [
  { name: "dispatch", label: "dispatch", kind: "choice", choices: ["adaptive", "immediate"] },
  { name: "max_wait_ms", label: "max wait (ms)", kind: "number" },
  { name: "latency_objective_ms", label: "latency objective (ms)", kind: "number" },
  { name: "max_in_flight_per_copy", label: "max in flight per copy", kind: "number" },
  { name: "top_up", label: "top up", kind: "boolean" },
  { name: "measured_hold", label: "hold on measured figures", kind: "boolean" },
  { name: "interactive_slowdown_percent", label: "interactive slowdown (%)", kind: "number" },
  { name: "batch_lane_floor_percent", label: "batch lane floor (%)", kind: "number" },
  { name: "warming_recheck_seconds", label: "warming recheck (s)", kind: "number" },
  { name: "max_warming_wait_seconds", label: "max warming wait (s)", kind: "number" },
];

/** Copies are the component's, not a setting: the prediction may try another count, the API may not set it. */
export const COPIES_FIELD = "copies";

export type FormValues = Readonly<Record<string, string | boolean>>;

export type Patch = { readonly settings: Partial<RouteSettings>; readonly copies?: number | undefined };

/** The fields whose value differs from `current`; a number field that is not a number is named in the error. */
export function patchOf(current: RouteSettings, form: FormValues, currentCopies?: number): Patch {
  const settings: Record<string, unknown> = {};
  for (const field of SETTING_FIELDS) {
    const raw = form[field.name];
    if (raw === undefined) continue;
    const value = field.kind === "number" ? numberOf(field.name, raw) : field.kind === "boolean" ? raw === true || raw === "true" : String(raw);
    if (value !== current[field.name]) settings[field.name] = value;
  }
  const rawCopies = form[COPIES_FIELD];
  const copies = rawCopies === undefined || rawCopies === "" ? undefined : numberOf(COPIES_FIELD, rawCopies);
  return { settings: settings as Partial<RouteSettings>, ...(copies !== undefined && copies !== currentCopies && { copies }) };
}

function numberOf(name: string, raw: string | boolean): number {
  const value = typeof raw === "string" && raw.trim() !== "" ? Number(raw) : Number.NaN;
  if (!Number.isFinite(value)) throw new RangeError(`${name}: must be a number, got ${JSON.stringify(raw)}`);
  return value;
}

export const isEmptyPatch = (patch: Patch) => Object.keys(patch.settings).length === 0 && patch.copies === undefined;

export type PredictionRow = { readonly label: string; readonly current: string; readonly proposed: string; readonly change: string };

const FIGURES: readonly { readonly label: string; readonly read: (p: PredictedRun) => number | null; readonly format: (v: number) => string }[] = [
  { label: "throughput (jobs/min)", read: (p) => p.throughput_rpm, format: (v) => v.toFixed(1) },
  { label: "p50", read: (p) => p.p50_ms, format: (v) => `${(v / 1000).toFixed(2)} s` },
  { label: "p95", read: (p) => p.p95_ms, format: (v) => `${(v / 1000).toFixed(2)} s` },
  { label: "p99", read: (p) => p.p99_ms, format: (v) => `${(v / 1000).toFixed(2)} s` },
  { label: "GPU busy", read: (p) => p.gpu_busy, format: (v) => `${(v * 100).toFixed(0)}%` },
  { label: "$ / 1M tokens", read: (p) => p.cost_per_million_tokens, format: (v) => v.toFixed(2) },
];

/** The prediction as rows: each figure now and with the change, and the change in percent. */
export function predictionRows(prediction: SettingsPrediction): PredictionRow[] {
  return FIGURES.map(({ label, read, format }) => {
    const now = read(prediction.current);
    const then = read(prediction.proposed);
    const change = now === null || then === null || now === 0 ? "—" : `${then >= now ? "+" : ""}${(((then - now) / now) * 100).toFixed(0)}%`;
    return { label, current: now === null ? "unreachable" : format(now), proposed: then === null ? "unreachable" : format(then), change };
  });
}
