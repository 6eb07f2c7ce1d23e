import type uPlot from "uplot";
import { ApiError, DashboardApi } from "./api.ts";
import { createChart, type Chart } from "./charts.ts";
import { CHARTS, chartColumns, headlines, remember, routeView, type Sample } from "./series.ts";
import { COPIES_FIELD, isEmptyPatch, patchOf, predictionRows, SETTING_FIELDS, type FormValues, type Patch } from "./settings.ts";
import type { RouteSettingsView } from "./api.ts";

/**
 * The page: reads `config.json` (the API's URL, written when the site is built), takes the admin
 * key from the URL's fragment (`#key=…`, never sent to a server) or asks for it, then polls
 * `GET /v1/metrics` and draws; the settings form predicts a change, then applies it.
 */

type Config = { readonly api: string; readonly pollMs?: number };

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);

async function start(): Promise<void> {
  const config = (await (await fetch("config.json")).json()) as Config;
  const key = keyFromFragment() ?? sessionStorage.getItem("batchline-key");
  if (!key) return askForKey();
  sessionStorage.setItem("batchline-key", key);
  const api = new DashboardApi(params.get("api") ?? config.api, key);
  const pollMs = Number(params.get("every") ?? config.pollMs ?? 3000);
  new Dashboard(api, pollMs).start();
}

function keyFromFragment(): string | null {
  const key = new URLSearchParams(location.hash.slice(1)).get("key");
  if (key) history.replaceState(null, "", location.pathname + location.search);
  return key;
}

function askForKey(): void {
  const form = $<HTMLFormElement>("key-form");
  form.hidden = false;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem("batchline-key", $<HTMLInputElement>("key-input").value.trim());
    location.reload();
  });
}

class Dashboard {
  readonly #api: DashboardApi;
  readonly #pollMs: number;
  #history: Sample[] = [];
  #route: string | undefined = params.get("route") ?? undefined;
  readonly #charts = new Map<string, Chart>();
  #settings: RouteSettingsView | undefined;
  /** The route whose settings the form shows or is loading. */
  #settingsFor: string | undefined;
  #predictedFor: string | undefined;

  constructor(api: DashboardApi, pollMs: number) {
    this.#api = api;
    this.#pollMs = pollMs;
  }

  start(): void {
    $("dashboard").hidden = false;
    $<HTMLSelectElement>("route").addEventListener("change", (event) => this.#selectRoute((event.target as HTMLSelectElement).value));
    $("predict").addEventListener("click", () => void this.#predict());
    $("apply").addEventListener("click", () => void this.#apply());
    $<HTMLFormElement>("settings").addEventListener("input", () => this.#formChanged());
    this.#renderForm();
    void this.#poll();
    addEventListener("resize", () => this.#charts.forEach((c) => c.resize(chartWidth())));
  }

  async #poll(): Promise<void> {
    try {
      const snapshot = await this.#api.metrics();
      this.#history = remember(this.#history, { atMs: Date.now(), snapshot });
      this.#routesChanged(snapshot.routes.map((r) => r.route));
      this.#draw();
      status(`updated ${new Date().toLocaleTimeString()} · ${snapshot.source} · window ${snapshot.window_seconds} s · ${this.#history.length} samples`);
    } catch (error) {
      status(`could not read the metrics: ${String(error instanceof Error ? error.message : error)}`, true);
    }
    setTimeout(() => void this.#poll(), this.#pollMs);
  }

  #routesChanged(routes: readonly string[]): void {
    const select = $<HTMLSelectElement>("route");
    if ([...select.options].map((o) => o.value).join() !== routes.join()) select.replaceChildren(...routes.map((r) => new Option(r, r)));
    const wanted = this.#route !== undefined && routes.includes(this.#route) ? this.#route : routes[0];
    if (wanted !== this.#settingsFor) this.#selectRoute(wanted);
    select.value = this.#route ?? "";
  }

  #selectRoute(route: string | undefined): void {
    this.#route = route;
    this.#settings = undefined;
    this.#settingsFor = route;
    this.#predictedFor = undefined;
    if (route) void this.#loadSettings(route);
    this.#draw();
  }

  #draw(): void {
    const route = this.#route;
    const latest = this.#history.at(-1);
    const view = latest && route ? routeView(latest.snapshot, route) : undefined;
    $("headlines").replaceChildren(
      ...headlines(view).map((h) => {
        const tile = element("div", { className: "tile" });
        tile.append(element("div", { className: "value", id: `headline-${h.id}`, textContent: h.text }), element("div", { className: "label", textContent: h.label }));
        return tile;
      }),
    );
    if (!route) return;
    for (const spec of CHARTS) {
      let chart = this.#charts.get(spec.id);
      if (!chart) {
        const host = element("div", { className: "chart", id: `chart-${spec.id}` });
        $("charts").append(host);
        chart = createChart(host, spec, chartWidth());
        this.#charts.set(spec.id, chart);
      }
      chart.update(chartColumns(this.#history, route, spec) as uPlot.AlignedData);
    }
  }

  #renderForm(): void {
    const fields = SETTING_FIELDS.map((field) => {
      const label = element("label", { textContent: field.label });
      const input =
        field.kind === "choice"
          ? Object.assign(document.createElement("select"), { name: field.name })
          : element("input", { name: field.name, type: field.kind === "boolean" ? "checkbox" : "number" });
      if (input instanceof HTMLSelectElement && field.kind === "choice") input.append(...field.choices.map((c) => new Option(c, c)));
      input.id = `setting-${field.name}`;
      label.append(input);
      return label;
    });
    const copies = element("label", { textContent: "copies (predict only)" });
    copies.append(element("input", { name: COPIES_FIELD, id: `setting-${COPIES_FIELD}`, type: "number", placeholder: "as now" }));
    $("fields").replaceChildren(...fields, copies);
  }

  async #loadSettings(route: string): Promise<void> {
    try {
      const view = await this.#api.settings(route);
      if (route !== this.#route) return;
      this.#settings = view;
      for (const field of SETTING_FIELDS) {
        const input = $<HTMLInputElement>(`setting-${field.name}`);
        const value = view.settings[field.name];
        if (field.kind === "boolean") input.checked = value === true;
        else input.value = String(value);
      }
      $<HTMLInputElement>(`setting-${COPIES_FIELD}`).value = "";
      this.#formChanged();
      message(`settings of ${route} (${view.source})`);
    } catch (error) {
      message(describe(error), true);
    }
  }

  #formValues(): FormValues {
    const values: Record<string, string | boolean> = {};
    for (const element of [...$<HTMLFormElement>("settings").elements] as HTMLInputElement[]) {
      if (element.name) values[element.name] = element.type === "checkbox" ? element.checked : element.value;
    }
    return values;
  }

  #patch(): Patch | undefined {
    if (!this.#settings) return undefined;
    try {
      return patchOf(this.#settings.settings, this.#formValues());
    } catch (error) {
      message(describe(error), true);
      return undefined;
    }
  }

  #formChanged(): void {
    const patch = this.#patch();
    $<HTMLButtonElement>("predict").disabled = !patch || isEmptyPatch(patch);
    $<HTMLButtonElement>("apply").disabled = !patch || Object.keys(patch.settings).length === 0 || this.#predictedFor !== JSON.stringify(patch);
  }

  async #predict(): Promise<void> {
    const route = this.#route;
    const patch = this.#patch();
    if (!route || !patch) return;
    message("simulating the route's last minutes under both settings…");
    try {
      const prediction = await this.#api.predict(route, { ...patch.settings, ...(patch.copies !== undefined && { copies: patch.copies }) });
      const rows = predictionRows(prediction);
      const table = element("table", { id: "prediction-table" });
      table.append(tableRow("th", ["", "now", "with the change", "change"]), ...rows.map((r) => tableRow("td", [r.label, r.current, r.proposed, r.change])));
      $("prediction").replaceChildren(
        element("p", { textContent: `Predicted on ${prediction.synthetic ? "a synthetic trace (no jobs lately)" : `the last ${prediction.window_s / 60} minutes' ${prediction.jobs} jobs`}:` }),
        table,
      );
      this.#predictedFor = JSON.stringify(patch);
      this.#formChanged();
      message("prediction ready: apply to change the route");
    } catch (error) {
      message(describe(error), true);
    }
  }

  async #apply(): Promise<void> {
    const route = this.#route;
    const patch = this.#patch();
    if (!route || !patch) return;
    try {
      this.#settings = await this.#api.apply(route, patch.settings);
      this.#predictedFor = undefined;
      this.#formChanged();
      message(`applied to ${route} at ${new Date().toLocaleTimeString()}: ${JSON.stringify(patch.settings)}`);
      $("applied").textContent = JSON.stringify(this.#settings.settings);
    } catch (error) {
      message(describe(error), true);
    }
  }
}

function element<K extends keyof HTMLElementTagNameMap>(tag: K, props: Partial<HTMLElementTagNameMap[K]> = {}): HTMLElementTagNameMap[K] {
  return Object.assign(document.createElement(tag), props);
}

function tableRow(cell: "th" | "td", values: readonly string[]): HTMLTableRowElement {
  const row = document.createElement("tr");
  row.append(...values.map((v) => element(cell, { textContent: v })));
  return row;
}

/** Two charts a row in the charts' column (each has a border and padding of 10 px, with 12 px between). */
const chartWidth = () => Math.max(320, Math.floor(($("charts").clientWidth - 12) / 2) - 12);
const describe = (error: unknown) => (error instanceof ApiError || error instanceof Error ? error.message : String(error));

function status(text: string, bad = false): void {
  const line = $("status");
  line.textContent = text;
  line.classList.toggle("bad", bad);
}

function message(text: string, bad = false): void {
  const line = $("message");
  line.textContent = text;
  line.classList.toggle("bad", bad);
}

void start();
