import { z } from "zod";
import { serviceFaults, type ServiceFault } from "./errors.ts";
import { seededRandom } from "./random.ts";

/**
 * Fault injection for the reliability tests: switches set when the emulator starts or at run time
 * over HTTP (POST /_emulator/faults, in this snake_case shape). Each call draws from one seeded
 * random sequence, so a test that makes the same calls sees the same faults.
 */
const fraction = z.number().min(0).max(1);

export const faultSettingsSchema = z.strictObject({
  /** Share of calls SageMaker refuses with ThrottlingException. */
  throttle_fraction: fraction.default(0),
  /** Share of calls that fail on the service's side, with `error_type`. */
  error_fraction: fraction.default(0),
  /** ServiceUnavailable (503), InternalFailure (500), InternalDependencyException (530), or ModelError (the container answers 500). */
  error_type: z.enum([...(Object.keys(serviceFaults) as [ServiceFault, ...ServiceFault[]]), "ModelError"]).default("ServiceUnavailable"),
  /** Share of calls the container sees `slow_seconds` late (simulated); they count toward the invocation timeout. */
  slow_fraction: fraction.default(0),
  slow_seconds: z.number().nonnegative().default(10),
  /** Share of response streams that break halfway with a ModelStreamError (StreamBroken). */
  stream_error_fraction: fraction.default(0),
  /** Every call fails from `after_seconds` (simulated, from when the switch is set) for `for_seconds`. */
  outage: z
    .strictObject({
      after_seconds: z.number().nonnegative().default(0),
      for_seconds: z.number().positive(),
      /** unavailable: a 503 ServiceUnavailable; reset: the connection is dropped with no answer. */
      kind: z.enum(["unavailable", "reset"]).default("unavailable"),
    })
    .optional(),
  /**
   * A request with a prompt holding this text is refused whole by the container (a 400 wrapped in
   * a 424 ModelError), as a real one refuses a list with one malformed or too-long prompt.
   */
  reject_prompts_containing: z.string().min(1).optional(),
  /** The inference components the faults apply to; all when absent. */
  components: z.array(z.string()).min(1).optional(),
  seed: z.number().int().default(0),
});
export type FaultSettingsInput = z.input<typeof faultSettingsSchema>;
export type FaultSettings = z.output<typeof faultSettingsSchema>;

/** What happens to one call. */
export type FaultDecision =
  | { readonly kind: "none"; readonly delayMs: number; readonly breakStream: boolean }
  | { readonly kind: "throttle" }
  | { readonly kind: "error"; readonly errorType: FaultSettings["error_type"] }
  | { readonly kind: "outage"; readonly reset: boolean };

const noFault: FaultDecision = { kind: "none", delayMs: 0, breakStream: false };

/**
 * The faults in force, from `sinceMs` (simulated) when they were set.
 *
 * @example
 * const faults = faultInjector(faultSettingsSchema.parse({ throttle_fraction: 0.5 }), 0);
 * faults.decide("llama-2-7b-ic", 1000) // { kind: "throttle" } about half the time
 */
export function faultInjector(settings: FaultSettings, sinceMs: number) {
  const random = seededRandom(`faults\u0000${settings.seed}`);
  const outage = settings.outage && {
    startMs: sinceMs + settings.outage.after_seconds * 1000,
    endMs: sinceMs + (settings.outage.after_seconds + settings.outage.for_seconds) * 1000,
    reset: settings.outage.kind === "reset",
  };
  const hit = (share: number) => share > 0 && random() < share;
  return {
    settings,
    outage,
    decide(component: string, nowMs: number): FaultDecision {
      if (settings.components && !settings.components.includes(component)) return noFault;
      if (outage && nowMs >= outage.startMs && nowMs < outage.endMs) return { kind: "outage", reset: outage.reset };
      if (hit(settings.throttle_fraction)) return { kind: "throttle" };
      if (hit(settings.error_fraction)) return { kind: "error", errorType: settings.error_type };
      const delayMs = hit(settings.slow_fraction) ? settings.slow_seconds * 1000 : 0;
      return { kind: "none", delayMs, breakStream: hit(settings.stream_error_fraction) };
    },
    /** The first of the prompts that the container refuses (reject_prompts_containing), by its index. */
    rejectedPrompt(component: string, prompts: readonly string[]): number | undefined {
      const marker = settings.reject_prompts_containing;
      if (marker === undefined || (settings.components && !settings.components.includes(component))) return undefined;
      const index = prompts.findIndex((p) => p.includes(marker));
      return index < 0 ? undefined : index;
    },
  };
}
export type FaultInjector = ReturnType<typeof faultInjector>;
