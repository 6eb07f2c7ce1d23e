import type { MetricsSnapshot } from "../../shared/core/metrics.ts";
import type { RouteSettings } from "../../shared/core/route-settings.ts";
import type { SettingsPrediction } from "../../shared/app/route-tuning.ts";

/** The API as the page calls it: the HTTP API's URL and an admin key, the same calls as curl's. */
export type RouteSettingsView = { readonly model: string; readonly settings: RouteSettings; readonly source: "default" | "stored" };

export class ApiError extends Error {
  readonly status: number;

  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export class DashboardApi {
  readonly #base: string;
  readonly #key: string;

  constructor(base: string, key: string) {
    this.#base = base.replace(/\/+$/, "");
    this.#key = key;
  }

  metrics(): Promise<MetricsSnapshot> {
    return this.#call("GET", "/v1/metrics");
  }

  settings(model: string): Promise<RouteSettingsView> {
    return this.#call("GET", `/v1/routes/${encodeURIComponent(model)}/settings`);
  }

  predict(model: string, body: Record<string, unknown>): Promise<SettingsPrediction> {
    return this.#call("POST", `/v1/routes/${encodeURIComponent(model)}/settings/predict`, body);
  }

  apply(model: string, patch: Partial<RouteSettings>): Promise<RouteSettingsView> {
    return this.#call("PUT", `/v1/routes/${encodeURIComponent(model)}/settings`, patch);
  }

  async #call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const response = await fetch(`${this.#base}${path}`, {
      method,
      headers: { authorization: `Bearer ${this.#key}`, accept: "application/json", ...(body !== undefined && { "content-type": "application/json" }) },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    if (!response.ok) {
      let message = text.slice(0, 300);
      try {
        message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? message;
      } catch {
        // Not JSON (a gateway's own answer): its text is the message.
      }
      throw new ApiError(response.status, `${method} ${path}: ${response.status} ${message}`);
    }
    return JSON.parse(text) as T;
  }
}
