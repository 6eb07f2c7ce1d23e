import { expect, it } from "vitest";
import type { GenerationInput } from "#shared/core/engine-codec";
import type { Component } from "#shared/core/routes";
import type { Invoker } from "#shared/ports";

/** An invoker, a rolling-batch component it serves, and a wait until that component runs a call. */
export type InvokerSetup = { readonly invoker: Invoker; readonly component: Component; running(): Promise<void> };

const input = (maxNewTokens: number): GenerationInput => ({ prompt: "Tell me about queues.", max_new_tokens: maxNewTokens, seed: 3 });
const reason = () => new Error("given up by the test");

/** `slow`: the invoker answers a 500-token prompt no sooner than a second after it is asked. */
export function invokerContract(make: (options: { readonly slow: boolean }) => Promise<InvokerSetup>): void {
  it("streams a prompt's text token by token, in order, and resolves with the whole generation", async () => {
    // Prepare
    const { invoker, component } = await make({ slow: false });
    const tokens: string[] = [];

    // Act
    const output = await invoker.invokeStream(component, input(8), (text) => tokens.push(text));

    // Assess
    expect(tokens).toHaveLength(8);
    expect(tokens.join("")).toBe(output.text);
    expect(output).toMatchObject({ completion_tokens: 8, finish_reason: "length" });
  });

  it("rejects every prompt of a call whose signal was aborted before it, with the signal's reason", async () => {
    // Prepare
    const { invoker, component } = await make({ slow: false });
    const controller = new AbortController();
    const why = reason();
    controller.abort(why);

    // Act
    const settled = await invoker.invoke(component, [input(4), input(4)], { signal: controller.signal });

    // Assess
    expect(settled).toEqual([{ status: "rejected", reason: why }, { status: "rejected", reason: why }]);
  });

  it("rejects a call given up while it waits for its answer, with the signal's reason", async () => {
    // Prepare
    const { invoker, component, running } = await make({ slow: true });
    const controller = new AbortController();
    const why = reason();

    // Act
    const call = invoker.invoke(component, [input(500)], { signal: controller.signal });
    await running();
    controller.abort(why);
    const settled = await call;

    // Assess
    expect(settled).toEqual([{ status: "rejected", reason: why }]);
  });

  it("rejects a stream given up after its first token, with the signal's reason, and sends nothing more", async () => {
    // Prepare
    const { invoker, component } = await make({ slow: false });
    const controller = new AbortController();
    const why = reason();
    const tokens: string[] = [];

    // Act
    const streamed = invoker.invokeStream(component, input(200), (text) => {
      tokens.push(text);
      controller.abort(why);
    }, { signal: controller.signal });

    // Assess
    await expect(streamed).rejects.toBe(why);
    const seen = tokens.length;
    expect(seen).toBeGreaterThanOrEqual(1);
    expect(seen).toBeLessThan(200);
  });
}
