import { describe, expect, it } from "vitest";
import { serviceStateOf } from "#shared/app/batcher/queue-report";
import { defaultRouteSettings } from "#shared/core/route-settings";
import { defaultCatalog } from "../../helpers/fakes.ts";

const route = defaultCatalog().routes.get("llama-2-7b");
if (!route) throw new Error("routes.yml has no llama-2-7b");
const settings = defaultRouteSettings(route);
const state = (held: { sequences: number; tokens: number }, jobsWaitingForRoom = false) =>
  serviceStateOf({ nowMs: 1_000, components: route.components, settings, heldOn: () => held, jobsWaitingForRoom });

describe("a batcher's report of its route's copies", () => {
  it("sums the copies' room and what every batcher holds on them", () => {
    expect(state({ sequences: 10, tokens: 5_000 }).service).toEqual({ atMs: 1_000, copies: 1, slots: 128, held: 10, tokens: route.limits.token_budget, heldTokens: 5_000 });
  });

  it("says jobs wait for room when a batcher holds some, or when the copies are full by sequences or by KV tokens", () => {
    expect(state({ sequences: 10, tokens: 5_000 }).backlogged).toBe(false);
    expect(state({ sequences: 10, tokens: 5_000 }, true).backlogged).toBe(true);
    expect(state({ sequences: 116, tokens: 5_000 }).backlogged).toBe(true);
    expect(state({ sequences: 109, tokens: 109 * 1024 }).backlogged).toBe(true);
    expect(state({ sequences: 90, tokens: 90 * 1024 }).backlogged).toBe(false);
  });
});
