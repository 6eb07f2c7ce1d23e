import { InvokeEndpointCommand, type SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import type { SageMakerNames } from "../config.ts";
import { decodeResponse, encodeRequests, type GenerationInput, type GenerationOutput } from "../core/engine-codec.ts";
import { ModelRejectedError } from "../core/errors.ts";
import type { Component, RouteCatalog } from "../core/routes.ts";
import { tokenCounter } from "../core/tokens.ts";
import type { Invoker } from "../ports.ts";
import { translateSageMakerError } from "./errors.ts";

/**
 * Invokes SageMaker inference components. Rolling-batch and vLLM engines get one call per prompt, all in
 * flight together (the container batches them); dynamic-batch engines one call for the list, and
 * if the model rejects the list, one call per prompt, so that a rejected prompt fails alone.
 * Endpoints and components are called by their deployed names (`names`, from the config); by
 * default by their routes.yml names, as the SageMaker emulator alone serves them.
 */
export class SageMakerInvoker implements Invoker {
  readonly #client: SageMakerRuntimeClient;
  readonly #catalog: RouteCatalog;
  readonly #names: SageMakerNames;

  constructor(options: { client: SageMakerRuntimeClient; catalog: RouteCatalog; names?: SageMakerNames }) {
    this.#client = options.client;
    this.#catalog = options.catalog;
    this.#names = options.names ?? { endpoint: (name) => name, inferenceComponent: (name) => name };
  }

  async invoke(component: Component, inputs: readonly GenerationInput[]): Promise<readonly PromiseSettledResult<GenerationOutput>[]> {
    const bodies = encodeRequests(component.engine, inputs);
    if (component.engine !== "lmi-dynamic") {
      return Promise.allSettled(bodies.map(async (body) => (await this.#call(component, body, 1))[0] as GenerationOutput));
    }
    const [body] = bodies;
    if (body === undefined) return [];
    try {
      const outputs = await this.#call(component, body, inputs.length);
      return outputs.map((value) => ({ status: "fulfilled" as const, value }));
    } catch (error) {
      // The model rejects the whole list for one bad prompt: send each alone, so only that one fails.
      if (error instanceof ModelRejectedError && inputs.length > 1) {
        return Promise.allSettled(
          inputs.map(async (input) => (await this.#call(component, encodeRequests(component.engine, [input])[0] ?? "", 1))[0] as GenerationOutput),
        );
      }
      return inputs.map(() => ({ status: "rejected" as const, reason: error }));
    }
  }

  async #call(component: Component, body: string, prompts: number): Promise<GenerationOutput[]> {
    let response;
    const endpointName = this.#names.endpoint(component.endpointName);
    try {
      response = await this.#client.send(
        new InvokeEndpointCommand({
          EndpointName: endpointName,
          InferenceComponentName: this.#names.inferenceComponent(component.name),
          ContentType: "application/json",
          Accept: "application/json",
          Body: new TextEncoder().encode(body),
        }),
      );
    } catch (error) {
      throw translateSageMakerError(error, endpointName);
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
