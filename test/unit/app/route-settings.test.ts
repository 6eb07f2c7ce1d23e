import { describe, expect, it } from "vitest";
import { getRouteSettings, updateRouteSettings } from "#shared/app/route-settings";
import { ForbiddenError, NotFoundError, ValidationError } from "#shared/core/errors";
import type { RouteSettings } from "#shared/core/route-settings";
import { memoryDeps } from "../../helpers/fakes.ts";

const ops = { tenant: "ops", role: "admin" } as const;
const member = { tenant: "acme", role: "member" } as const;

describe("route settings", () => {
  it("gives the defaults until ops store settings, then what they stored", async () => {
    const deps = memoryDeps();
    expect(await getRouteSettings(deps, "llama-2-7b")).toEqual({
      model: "llama-2-7b",
      source: "default",
      settings: { dispatch: "adaptive", top_up: true, max_in_flight_per_copy: 128, max_wait_ms: 1000, latency_objective_ms: 30_000, warming_recheck_seconds: 30, max_warming_wait_seconds: 1800, batch_lane_floor_percent: 10, interactive_slowdown_percent: 35, measured_hold: true },
    });
    await updateRouteSettings(deps, ops, "llama-2-7b", { max_in_flight_per_copy: 64, top_up: false });
    expect(await getRouteSettings(deps, "llama-2-7b")).toMatchObject({ source: "stored", settings: { max_in_flight_per_copy: 64, top_up: false, dispatch: "adaptive" } });
  });

  it("gives a knob added since the settings were stored its default", async () => {
    const deps = memoryDeps();
    const { warming_recheck_seconds: _, ...storedBeforeTheKnob } = (await getRouteSettings(deps, "llama-2-7b")).settings;
    await deps.routeSettings.put("llama-2-7b", { ...storedBeforeTheKnob, max_wait_ms: 500 } as RouteSettings, new Date());
    expect((await getRouteSettings(deps, "llama-2-7b")).settings).toMatchObject({ max_wait_ms: 500, warming_recheck_seconds: 30 });
  });

  it("lets only admin keys change them", async () => {
    const deps = memoryDeps();
    await expect(updateRouteSettings(deps, member, "llama-2-7b", { top_up: false })).rejects.toThrow(ForbiddenError);
    expect(deps.routeSettings.settings.size).toBe(0);
  });

  it("names an unknown model", async () => {
    const deps = memoryDeps();
    await expect(getRouteSettings(deps, "gpt-9")).rejects.toThrow(NotFoundError);
    await expect(getRouteSettings(deps, "gpt-9")).rejects.toThrow(/^model gpt-9 not found; known models: llama-2-7b/);
  });

  it.each([
    [{ max_in_flight_per_copy: 500 }, "max_in_flight_per_copy: must be at most 128, the max_sequences of model llama-2-7b's components"],
    [{ max_in_flight_per_copy: 0 }, "max_in_flight_per_copy: must be at least 1"],
    [{ dispatch: "eager" }, 'dispatch: must be "adaptive" or "immediate"'],
    [{ max_wait_ms: 40_000 }, "max_wait_ms: must be less than latency_objective_ms"],
    [{ interactive_slowdown_percent: 313 }, "interactive_slowdown_percent: must be at most 312 for model llama-2-7b: past it the batch lane could fill a copy of its components and leave an interactive job no room to start"],
    [{ interactive_slowdown_percent: 0 }, "interactive_slowdown_percent: must be at least 1"],
    [{ interactive_slowdown_percent: 12.5 }, "interactive_slowdown_percent: must be an integer"],
    [{ colour: "red" }, "colour: is not a known field"],
    [[1], "body: must be a JSON object"],
  ])("rejects %j and stores nothing", async (patch, message) => {
    const deps = memoryDeps();
    await expect(updateRouteSettings(deps, ops, "llama-2-7b", patch)).rejects.toThrow(ValidationError);
    await expect(updateRouteSettings(deps, ops, "llama-2-7b", patch)).rejects.toThrow(message);
    expect(deps.routeSettings.settings.size).toBe(0);
  });
});
