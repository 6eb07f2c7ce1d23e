import { InvokeEndpointCommand, type SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import { decodeResponse, encodeRequests, type GenerationInput, type GenerationOutput } from "../core/engine-codec.ts";
import type { Component, RouteCatalog } from "../core/routes.ts";
import { tokenCounter } from "../core/tokens.ts";
import type { Invoker } from "../ports.ts";
import { translateSageMakerError } from "./errors.ts";

/**
 * Invokes SageMaker inference components. Rolling-batch engines get one call per prompt, all in
 * flight together (the container batches them); dynamic-batch engines one call for the list.
 */
export class SageMakerInvoker implements Invoker {
  readonly #client: SageMakerRuntimeClient;
  readonly #catalog: RouteCatalog;

  constructor(options: { client: SageMakerRuntimeClient; catalog: RouteCatalog }) {
    this.#client = options.client;
    this.#catalog = options.catalog;
  }

  async invoke(component: Component, inputs: readonly GenerationInput[]): Promise<readonly PromiseSettledResult<GenerationOutput>[]> {
    const bodies = encodeRequests(component.engine, inputs);
    if (component.engine === "lmi-rolling") {
      return Promise.allSettled(bodies.map(async (body) => (await this.#call(component, body, 1))[0] as GenerationOutput));
    }
    const [body] = bodies;
    if (body === undefined) return [];
    const outputs = await Promise.allSettled([this.#call(component, body, inputs.length)]);
    const [settled] = outputs;
    if (settled?.status === "rejected") return inputs.map(() => settled);
    return (settled?.value ?? []).map((value) => ({ status: "fulfilled" as const, value }));
  }

  async #call(component: Component, body: string, prompts: number): Promise<GenerationOutput[]> {
    let response;
    try {
      response = await this.#client.send(
        new InvokeEndpointCommand({
          EndpointName: component.endpointName,
          InferenceComponentName: component.name,
          ContentType: "application/json",
          Accept: "application/json",
          Body: new TextEncoder().encode(body),
        }),
      );
    } catch (error) {
      throw translateSageMakerError(error, component.endpointName);
    }
    const counter = tokenCounter(this.#tokenizerOf(component));
    return decodeResponse(component.engine, new TextDecoder().decode(response.Body), prompts, (t) => counter.countCompletion(t));
  }

  #tokenizerOf(component: Component) {
    for (const route of this.#catalog.routes.values()) {
      if (route.components.some((c) => c.name === component.name)) return route.tokenizer;
    }
    return "llama2" as const;
  }
}
