import type { TraceSpec } from "./trace.ts";

/**
 * The scenarios of a bench run: one trace each, sent to the engine alone and to every policy.
 * Quick runs are the same scenarios, shorter.
 */
export type Scenario = {
  readonly name: string;
  readonly title: string;
  /** saturated: throughput over the steady part; the others: latency over every request. */
  readonly kind: "saturated" | "latency";
  readonly trace: TraceSpec;
  /** How long after the last arrival the bench waits for answers. */
  readonly drainMs: number;
  /** saturated: throughput is measured from here (the engine's batch has filled). */
  readonly warmupMs: number;
  /** Reported, not held to a target. */
  readonly targeted: boolean;
};

export type Mode = "quick" | "full";

const fixed512 = { kind: "fixed", promptTokens: 512, maxTokens: 512 } as const;

/** ms from a length in seconds for each mode. */
const byMode = (mode: Mode) => (seconds: { quick: number; full: number }) => 1000 * (mode === "quick" ? seconds.quick : seconds.full);

/** Offered loads are fixed numbers, not fractions of a measured ceiling, so that a seed gives one trace. */
export function scenarios(mode: Mode, seed: number): Scenario[] {
  const s = byMode(mode);
  return [
    {
      name: "ten-percent",
      title: "10% of capacity, Poisson 59 rpm, 512+512",
      kind: "latency",
      trace: { seed: seed + 1, durationMs: s({ quick: 20, full: 120 }), arrivals: { kind: "poisson", rpm: 59 }, lengths: fixed512 },
      drainMs: s({ quick: 8, full: 15 }),
      warmupMs: 0,
      targeted: true,
    },
    {
      name: "poisson-400",
      title: "Poisson 400 rpm, 512+512",
      kind: "latency",
      // Past the batcher's 60 s top-up budget, even in a quick run: a batcher invocation ends and
      // the next one starts within the trace, as in any run longer than a minute.
      trace: { seed: seed + 2, durationMs: s({ quick: 90, full: 120 }), arrivals: { kind: "poisson", rpm: 400 }, lengths: fixed512 },
      drainMs: s({ quick: 15, full: 20 }),
      warmupMs: 0,
      targeted: true,
    },
    {
      name: "mixed",
      title: "Poisson 300 rpm, mixed lengths (prompt 32-2048, new 16-1024, log-uniform)",
      kind: "latency",
      trace: {
        seed: seed + 3,
        durationMs: s({ quick: 12, full: 60 }),
        arrivals: { kind: "poisson", rpm: 300 },
        lengths: { kind: "mixed", prompt: [32, 2048], maxTokens: [16, 1024] },
      },
      drainMs: s({ quick: 12, full: 20 }),
      warmupMs: 0,
      targeted: false,
    },
    {
      name: "bursty",
      title: "bursty: 60 rpm Poisson + 2 s bursts at 1200 rpm every 10 s (300 rpm mean), 512+512",
      kind: "latency",
      trace: {
        seed: seed + 4,
        durationMs: s({ quick: 10, full: 60 }),
        arrivals: { kind: "bursty", baseRpm: 60, burstRpm: 1200, periodMs: 10_000, burstMs: 2_000 },
        lengths: fixed512,
      },
      drainMs: s({ quick: 12, full: 20 }),
      warmupMs: 0,
      targeted: false,
    },
    saturatedScenario(mode, { name: "saturated", title: "saturated: Poisson 720 rpm (above the engine's ~590), 512+512", seed: seed + 5, rpm: 720 }),
    {
      // Jobs that wait tens of seconds, all answered: where a start estimated at submit is worth
      // something and can be far off (issue 12 item 2). The other scenarios seldom keep a job waiting.
      name: "backlog",
      title: "backlog: Poisson 1,100 rpm (twice the engine's ~555), then drained, 512+512",
      kind: "latency",
      trace: { seed: seed + 7, durationMs: s({ quick: 30, full: 60 }), arrivals: { kind: "poisson", rpm: 1100 }, lengths: fixed512 },
      drainMs: s({ quick: 75, full: 120 }),
      warmupMs: 0,
      targeted: false,
    },
  ];
}

/**
 * A saturated run: Poisson arrivals above the engine's ceiling, 512+512, throughput over whole
 * turnovers of the running batch within the steady part. Long enough for whole turnovers (about
 * 12 s each on the 7B and 8B routes) to fit in the steady part, quick too: a shorter one measured
 * a share of a wave (issue 15 item 7).
 */
export function saturatedScenario(mode: Mode, spec: { readonly name: string; readonly title: string; readonly seed: number; readonly rpm: number }): Scenario {
  const s = byMode(mode);
  return {
    name: spec.name,
    title: spec.title,
    kind: "saturated",
    trace: { seed: spec.seed, durationMs: s({ quick: 45, full: 60 }), arrivals: { kind: "poisson", rpm: spec.rpm }, lengths: fixed512 },
    drainMs: s({ quick: 15, full: 15 }),
    warmupMs: s({ quick: 10, full: 20 }),
    targeted: true,
  };
}

/**
 * Issue 15 item 8: the Llama-3.1-8B route (vLLM, paged KV, two copies of 256 sequences) saturated.
 * By its profile the two copies answer about 2,500 requests of 512+512 a minute: 3,000 keeps them full.
 */
export const GQA_SATURATED = "gqa-saturated";
export const GQA_MODEL = "llama-3-8b";

export function gqaSaturatedScenario(mode: Mode, seed: number): Scenario {
  return saturatedScenario(mode, { name: GQA_SATURATED, title: `saturated on ${GQA_MODEL} (GQA, vLLM, 2 copies): Poisson 3,000 rpm (above the engine's ~2,500), 512+512`, seed: seed + 8, rpm: 3_000 });
}

/** The policy whose slot the engine-alone run of each trace shares: the two are compared. */
export const COMPARED_WITH_ENGINE = "d-adaptive";

/**
 * The groups of policies that run a scenario at the same time, each on its own stack, in order.
 * A full run gives every policy the machine to itself. A quick run, to fit in minutes on two
 * cores, shares it where the numbers are not held to a target: (a), whose GPU serves one
 * request at a time whatever the load, runs beside the static-engine runs (the measured hold
 * and the model-only one side by side, under the same load); at 10% of capacity
 * the baselines run together; the untargeted scenarios run in two groups. batchline's own
 * policy (d) runs alone in every targeted scenario. The report says who ran with whom.
 */
export function slots(scenario: Scenario, mode: Mode, policies: readonly string[]): string[][] {
  const groups: string[][] =
    mode === "full"
      ? []
      : scenario.name === "ten-percent"
        ? [["a-one-at-a-time", "b-esm-defaults", "c-fixed-window", "d-adaptive-static", "d-adaptive-static-model"]]
        : scenario.targeted
          ? [["a-one-at-a-time", "d-adaptive-static", "d-adaptive-static-model"]]
          : [["d-adaptive", "b-esm-defaults"], ["c-fixed-window", "d-adaptive-static", "d-adaptive-static-model", "a-one-at-a-time"]];
  const chosen = groups.map((g) => g.filter((name) => policies.includes(name))).filter((g) => g.length > 0);
  const grouped = new Set(chosen.flat());
  const alone = policies.filter((name) => !grouped.has(name)).map((name) => [name]);
  // In the policies' own order, by each group's first member.
  return [...alone, ...chosen].toSorted((a, b) => policies.indexOf(a[0] as string) - policies.indexOf(b[0] as string));
}
