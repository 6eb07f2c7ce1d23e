import { InvokeEndpointCommand, InvokeEndpointWithResponseStreamCommand, type SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import type { SageMakerNames } from "../config.ts";
import { decodeResponse, encodeRequests, type GenerationInput, type GenerationOutput } from "../core/engine-codec.ts";
import { codecFor } from "../core/codecs/index.ts";
import { ModelRejectedError } from "../core/errors.ts";
import { settleByHalves } from "../core/poison-bisection.ts";
import type { Component, RouteCatalog } from "../core/routes.ts";
import { createStreamDecoder } from "../core/stream-decoder.ts";
import { tokenCounter } from "../core/tokens.ts";
import type { InvokeOptions, Invoker } from "../ports.ts";
import { translateSageMakerError } from "./errors.ts";

/**
 * Invokes SageMaker inference components. Rolling-batch and vLLM engines get one call per prompt, all in
 * flight together (the container batches them); dynamic-batch engines one call for the list, and
 * if the model rejects the list, its halves, until a rejected prompt fails alone (poison-bisection.ts).
 * Endpoints and components are called by their deployed names (`names`, from the config); by
 * default by their routes.yml names, as the SageMaker emulator alone serves them. A streamed call
 * (InvokeEndpointWithResponseStream) is one prompt on a rolling-batch or vLLM engine.
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

  async invoke(component: Component, inputs: readonly GenerationInput[], options: InvokeOptions = {}): Promise<readonly PromiseSettledResult<GenerationOutput>[]> {
    const call = async (body: string, prompts: number) => this.#decode(component, await this.#send(component, body, options), prompts);
    if (component.engine !== "lmi-dynamic") {
      return Promise.allSettled(encodeRequests(component, inputs).map(async (body) => (await call(body, 1))[0] as GenerationOutput));
    }
    // The model rejects the whole list for one bad prompt: halves of it go again until that one fails alone.
    const callBatch = (batch: readonly GenerationInput[]) => call(encodeRequests(component, batch)[0] ?? "", batch.length);
    return settleByHalves(inputs, callBatch, (error) => error instanceof ModelRejectedError);
  }

  async invokeStream(component: Component, input: GenerationInput, onText: (text: string) => void, options: InvokeOptions = {}): Promise<GenerationOutput> {
    const decoder = createStreamDecoder(component, this.#countCompletion(component));
    const [body = ""] = encodeRequests(component, [input], { stream: true });
    const command = new InvokeEndpointWithResponseStreamCommand({ ...this.#target(component), ContentType: "application/json", Accept: "application/json", Body: new TextEncoder().encode(body) });
    await this.#translated(component, options, async () => {
      const response = await this.#client.send(command, { abortSignal: options.signal });
      // The SDK throws a ModelStreamError met mid-stream from this iterator.
      for await (const event of response.Body ?? []) {
        const bytes = event.PayloadPart?.Bytes;
        if (bytes) for (const text of decoder.push(bytes)) onText(text);
      }
    });
    return decoder.end();
  }

  async #send(component: Component, body: string, options: InvokeOptions): Promise<Uint8Array | undefined> {
    const command = new InvokeEndpointCommand({ ...this.#target(component), ContentType: "application/json", Accept: "application/json", Body: new TextEncoder().encode(body) });
    const response = await this.#translated(component, options, () => this.#client.send(command, { abortSignal: options.signal }));
    return response.Body;
  }

  /** Runs an SDK call; a call given up rejects with its signal's reason, any other failure as errors.ts translates it. */
  async #translated<T>(component: Component, options: InvokeOptions, call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch (error) {
      if (options.signal?.aborted) throw options.signal.reason;
      throw translateSageMakerError(error, this.#names.endpoint(component.endpointName), (body) => codecFor(component.format).errorMessage(body));
    }
  }

  #target(component: Component) {
    return { EndpointName: this.#names.endpoint(component.endpointName), InferenceComponentName: this.#names.inferenceComponent(component.name) };
  }

  #decode(component: Component, body: Uint8Array | undefined, prompts: number): GenerationOutput[] {
    return decodeResponse(component, new TextDecoder().decode(body), prompts, this.#countCompletion(component));
  }

  #countCompletion(component: Component): (text: string) => number {
    const counter = tokenCounter(this.#tokenizerOf(component));
    return (text) => counter.countCompletion(text);
  }

  #tokenizerOf(component: Component) {
    for (const route of this.#catalog.routes.values()) {
      if (route.components.some((c) => c.name === component.name)) return route.tokenizer;
    }
    return "llama2" as const;
  }
}
