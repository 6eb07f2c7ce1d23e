import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { updateRouteSettings } from "#shared/app/route-settings";
import { ForbiddenError, NotFoundError, ValidationError } from "#shared/core/errors";
import { checkRouteSettings, defaultRouteSettings, maxInteractiveSlowdownPercent, routeSettingsSchema, type RouteSettings } from "#shared/core/route-settings";
import type { Route } from "#shared/core/routes";
import { defaultCatalog, memoryDeps } from "../../helpers/fakes.ts";
import { expectOurError, expectPrototypesClean, fuzzParams, junkJson, memoryState, nastyNumber, nastyString, outcomeOf, ownObject, prototypeKeys, shownKey } from "../../helpers/fuzz.ts";

// PUT /v1/routes/{model}/settings: a patch of some knobs, checked against the schema and the route.
const catalog = defaultCatalog();
const routes = [...catalog.routes.values()];
const settingFields = Object.keys(routeSettingsSchema.shape) as (keyof RouteSettings)[];

/** A route and a current setting that is itself valid for it. */
const routeAndCurrent: fc.Arbitrary<{ route: Route; current: RouteSettings }> = fc.constantFrom(...routes).chain((route) =>
  fc.oneof(
    fc.constant({ route, current: defaultRouteSettings(route) }),
    validSettings(route).map((current) => ({ route, current })),
  ),
);

function validSettings(route: Route): fc.Arbitrary<RouteSettings> {
  return fc
    .record({
      dispatch: fc.constantFrom("adaptive" as const, "immediate" as const),
      top_up: fc.boolean(),
      max_in_flight_per_copy: fc.integer({ min: 1, max: route.limits.max_sequences }),
      max_wait_ms: fc.integer({ min: 0, max: 60_000 }),
      latency_objective_ms: fc.integer({ min: 1, max: 3_600_000 }),
      warming_recheck_seconds: fc.integer({ min: 1, max: 900 }),
      max_warming_wait_seconds: fc.integer({ min: 1, max: 86_400 }),
      batch_lane_floor_percent: fc.integer({ min: 1, max: 50 }),
      interactive_slowdown_percent: fc.integer({ min: 1, max: maxInteractiveSlowdownPercent(route) }),
      measured_hold: fc.boolean(),
    })
    .filter((s) => s.max_wait_ms < s.latency_objective_ms);
}

const notAnInteger = fc.oneof(
  fc.constantFrom("1", "", null, true, [], {}, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 1.5, -0.5, Number.MAX_SAFE_INTEGER + 2, 1e21),
  fc.double({ noNaN: true, noDefaultInfinity: true }).filter((d) => !Number.isInteger(d)),
);

/** A value the field refuses whatever else the settings say; `also` lists the other field a cross-field rule may name. */
function invalidSetting(field: keyof RouteSettings, route: Route): fc.Arbitrary<unknown> {
  switch (field) {
    case "dispatch":
      return fc.oneof(nastyString.filter((s) => s !== "adaptive" && s !== "immediate"), nastyNumber, fc.constantFrom(null, true, ["adaptive"], { adaptive: true }, "ADAPTIVE"));
    case "top_up":
    case "measured_hold":
      return fc.oneof(fc.constantFrom("true", "false", 0, 1, null, [], {}, "yes"), nastyNumber, nastyString);
    case "max_in_flight_per_copy":
      return fc.oneof(notAnInteger, fc.integer({ max: 0 }), fc.integer({ min: route.limits.max_sequences + 1 }));
    case "max_wait_ms":
      return fc.oneof(notAnInteger, fc.integer({ max: -1 }), fc.integer({ min: 60_001 }));
    case "latency_objective_ms":
      return fc.oneof(notAnInteger, fc.integer({ max: 0 }), fc.integer({ min: 3_600_001 }));
    case "warming_recheck_seconds":
      return fc.oneof(notAnInteger, fc.integer({ max: 0 }), fc.integer({ min: 901 }));
    case "max_warming_wait_seconds":
      return fc.oneof(notAnInteger, fc.integer({ max: 0 }), fc.integer({ min: 86_401 }));
    case "batch_lane_floor_percent":
      return fc.oneof(notAnInteger, fc.integer({ max: 0 }), fc.integer({ min: 51 }));
    case "interactive_slowdown_percent":
      return fc.oneof(notAnInteger, fc.integer({ max: 0 }), fc.integer({ min: maxInteractiveSlowdownPercent(route) + 1 }));
  }
}

describe("checkRouteSettings under fuzzing", () => {
  it("answers any patch with valid settings or a ValidationError, and never pollutes a prototype", () => {
    const patch = fc.oneof(
      junkJson,
      fc.anything({ withBoxedValues: true, withMap: true, withSet: true, withNullPrototype: true, withBigInt: true, withDate: true }),
      fc.array(fc.tuple(fc.constantFrom(...settingFields, ...prototypeKeys), fc.oneof(junkJson, nastyNumber)), { maxLength: 6 }).map((e) => ownObject(e)),
      fc.constantFrom(...prototypeKeys).chain((key) => fc.constant(JSON.parse(`{${JSON.stringify(key)}:{"max_in_flight_per_copy":1,"polluted":true}}`) as unknown)),
    );
    fc.assert(
      fc.property(routeAndCurrent, patch, ({ route, current }, p) => {
        const outcome = outcomeOf(() => checkRouteSettings(route, current, p));
        if (outcome.ok) {
          expect(Object.getPrototypeOf(outcome.value)).toBe(Object.prototype);
          expect(Object.keys(outcome.value).sort()).toEqual([...settingFields].sort());
          expect(outcome.value.max_in_flight_per_copy).toBeLessThanOrEqual(route.limits.max_sequences);
          expect(outcome.value.max_wait_ms).toBeLessThan(outcome.value.latency_objective_ms);
        } else {
          expect(outcome.error.message).toMatch(/^\S.*?: \S/);
        }
        expectPrototypesClean();
      }),
      fuzzParams(1500),
    );
  });

  it("accepts any valid patch and keeps the fields it does not name", () => {
    const input = routeAndCurrent.chain(({ route, current }) =>
      fc.tuple(fc.constant(route), fc.constant(current), validSettings(route), fc.subarray(settingFields)).map(([r, c, next, names]) => ({
        route: r,
        current: c,
        patch: Object.fromEntries(names.map((n) => [n, next[n]])),
      })),
    ).filter(({ current, patch }) => {
      const merged = { ...current, ...patch };
      return merged.max_wait_ms < merged.latency_objective_ms;
    });
    fc.assert(
      fc.property(input, ({ route, current, patch }) => {
        expect(checkRouteSettings(route, current, patch)).toEqual({ ...current, ...patch });
      }),
      fuzzParams(800),
    );
  });

  it("refuses a patch with one wrong field, naming that field", () => {
    const input = routeAndCurrent.chain(({ route, current }) =>
      fc.constantFrom(...settingFields).chain((field) => invalidSetting(field, route).map((value) => ({ route, current, field, patch: ownObject([[field, value]]) }))),
    );
    fc.assert(
      fc.property(input, ({ route, current, field, patch }) => {
        const outcome = outcomeOf(() => checkRouteSettings(route, current, patch));
        expect(outcome.ok).toBe(false);
        if (outcome.ok) return;
        expect((outcome.error as ValidationError).field).toBe(field);
        expect(outcome.error.message.startsWith(`${field}: `)).toBe(true);
      }),
      fuzzParams(1000),
    );
  });

  it("refuses a wait that is not shorter than the objective, naming max_wait_ms", () => {
    const input = fc.constantFrom(...routes).chain((route) =>
      fc.tuple(fc.integer({ min: 1, max: 60_000 }), fc.nat({ max: 60_000 })).map(([wait, less]) => ({
        route,
        patch: { max_wait_ms: wait, latency_objective_ms: Math.max(1, wait - less) },
      })),
    );
    fc.assert(
      fc.property(input, ({ route, patch }) => {
        const outcome = outcomeOf(() => checkRouteSettings(route, defaultRouteSettings(route), patch));
        expect(outcome.ok ? "accepted" : outcome.error.message).toBe("max_wait_ms: must be less than latency_objective_ms");
      }),
      fuzzParams(300),
    );
  });

  it("refuses an unknown key, prototype keys included, naming it", () => {
    const known = new Set<string>(settingFields);
    const input = fc.tuple(fc.constantFrom(...routes), fc.oneof(fc.constantFrom(...prototypeKeys, "maxWaitMs", "dispatch "), nastyString).filter((k) => k !== "" && !known.has(k)), junkJson);
    fc.assert(
      fc.property(input, ([route, key, value]) => {
        const outcome = outcomeOf(() => checkRouteSettings(route, defaultRouteSettings(route), ownObject([[key, value]])));
        expect(outcome.ok).toBe(false);
        if (!outcome.ok) expect(outcome.error).toMatchObject({ field: key, message: `${shownKey(key)}: is not a known field` });
        expectPrototypesClean();
      }),
      fuzzParams(500),
    );
  });

  it("stores nothing for a rejected patch, a member key or an unknown model", async () => {
    const deps = memoryDeps(catalog);
    const ops = { tenant: "ops", role: "admin" } as const;
    await updateRouteSettings(deps, ops, "llama-2-7b", { top_up: false });
    const input = fc.oneof(
      fc.tuple(fc.constant(ops), fc.constantFrom(...routes.map((r) => r.name)), fc.oneof(junkJson, fc.constantFrom(...settingFields).chain((f) => invalidSetting(f, routes[0] as Route).map((v) => ownObject([[f, v]]))))),
      fc.tuple(fc.constant({ tenant: "acme", role: "member" } as const), fc.constantFrom(...routes.map((r) => r.name)), fc.constant({ top_up: true })),
      fc.tuple(fc.constant(ops), nastyString.filter((m) => !catalog.routes.has(m)), fc.constant({ top_up: true })),
    );
    await fc.assert(
      fc.asyncProperty(input, async ([principal, model, patch]) => {
        const before = memoryState(deps);
        const error = await updateRouteSettings(deps, principal, model, patch).then(() => undefined, (e: unknown) => e);
        if (error === undefined) return; // junk that happened to be a valid patch (say {}): stored, as it should be
        expectOurError(error, error instanceof ForbiddenError ? ForbiddenError : error instanceof NotFoundError ? NotFoundError : ValidationError);
        expect(memoryState(deps)).toEqual(before);
      }),
      fuzzParams(400),
    );
  });
});
