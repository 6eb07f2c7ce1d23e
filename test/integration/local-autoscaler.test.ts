import { ValidationError } from "@aws-sdk/client-sagemaker-runtime";
import { afterEach, describe, expect, it } from "vitest";
import { type LocalAutoscaler, startLocalAutoscaler } from "#local/autoscaler";
import { silentLogger } from "#local/log";
import { pollUntil } from "../helpers/local-aws.ts";
import { caught, componentOf, emulatorForTests, invokeCommand, routesCatalog, withTestComponents } from "../helpers/sagemaker.ts";

/**
 * The local autoscaler on a SageMaker emulator, through the SDK: a component at zero woken by the
 * step policy, scaled out by target tracking under load, and back to zero when idle. Time: the
 * emulator runs 10x (GPU and scaling), and every scaling delay is divided by 60 on top.
 */
const routes = routesCatalog();
const { catalog, added } = withTestComponents(routes, componentOf(routes, "llama-2-7b-ic"), {
  "waking-test": {
    copies: 0,
    warmup_seconds: 60,
    autoscaling: { min_copies: 0, max_copies: 2, target_concurrent_requests_per_copy: 4, scale_out_cooldown_seconds: 60, scale_in_cooldown_seconds: 60 },
  },
});
const waking = added["waking-test"] ?? componentOf(routes, "llama-2-7b-ic");
const body = (maxNewTokens: number) => ({ inputs: "Hello", parameters: { max_new_tokens: maxNewTokens } });

describe("the local autoscaler", () => {
  const env = emulatorForTests({ catalog, timeScale: 10, scalingTimeCompression: 60 });
  let autoscaler: LocalAutoscaler | undefined;
  afterEach(() => autoscaler?.stop());

  it("wakes a component at zero through the step policy, scales it out under load and back in to zero when idle", async () => {
    // Prepare
    autoscaler = startLocalAutoscaler({ scaling: env.emulator.scaling, log: silentLogger });
    const causes = () => env.emulator.scaling.activities(waking.name).map((a) => `${a.cause} ${a.fromCopies}->${a.toCopies}`);
    const call = (maxNewTokens = 4) => env.sagemaker.send(invokeCommand(waking, body(maxNewTokens)));
    const serving = () => env.emulator.stats().components.find((c) => c.component === waking.name)?.currentCopies;

    // Act
    const atZero = await caught(call());
    await pollUntil(async () => (causes().length > 0 ? true : undefined), "the step policy to wake the component", 30_000);
    // Watched, not called: calls during the warm-up would count as no-capacity failures too.
    await pollUntil(async () => (serving() === 1 ? true : undefined), "the woken copy to serve", 30_000);
    const answered = await call();
    const load = Array.from({ length: 20 }, () => call(1000));
    await pollUntil(async () => (causes().some((c) => c.startsWith("target-tracking-scale-out")) ? true : undefined), "a scale-out under load", 30_000);
    await Promise.all(load);
    await pollUntil(async () => (env.emulator.scaling.desiredCopies(waking.name) === 0 ? true : undefined), "the idle component back at zero", 60_000);

    // Assess
    expect(atZero).toBeInstanceOf(ValidationError);
    expect(atZero.message).toMatch(/has no capacity/);
    expect(answered.$metadata.httpStatusCode).toBe(200);
    expect(causes()).toEqual(["step-scaling-no-capacity 0->1", "target-tracking-scale-out 1->2", "target-tracking-scale-in 2->0"]);
    const stats = env.emulator.stats();
    const component = stats.components.find((c) => c.component === waking.name);
    expect(stats.scalingActivities.filter((a) => a.component === waking.name)).toHaveLength(3);
    expect(component?.copyCountSeries.at(-1)).toMatchObject({ placed: 0, serving: 0, desired: 0 });
    expect(component?.billing.copySeconds).toBeGreaterThan(0);
  });
});
