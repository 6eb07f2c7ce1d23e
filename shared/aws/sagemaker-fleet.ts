import { DescribeInferenceComponentCommand, type SageMakerClient } from "@aws-sdk/client-sagemaker";
import type { SageMakerNames } from "../config.ts";
import type { Component } from "../core/routes.ts";
import type { CopyCount, FleetView } from "../ports.ts";
import { translateSdkError } from "./errors.ts";

/**
 * Reads a component's copies from SageMaker's control plane (DescribeInferenceComponent): the
 * copies in service (CurrentCopyCount; AWS says "currently deployed", taken here as serving, as
 * the embedded stack's emulator answers), and the count autoscaling last asked for.
 * Components are named as deployed (`names`, from the config); by default as in routes.yml.
 */
export class SageMakerFleetView implements FleetView {
  readonly #client: SageMakerClient;
  readonly #names: Pick<SageMakerNames, "inferenceComponent">;

  constructor(options: { client: SageMakerClient; names?: Pick<SageMakerNames, "inferenceComponent"> }) {
    this.#client = options.client;
    this.#names = options.names ?? { inferenceComponent: (name) => name };
  }

  async copies(component: Component): Promise<CopyCount> {
    let described;
    try {
      described = await this.#client.send(new DescribeInferenceComponentCommand({ InferenceComponentName: this.#names.inferenceComponent(component.name) }));
    } catch (error) {
      throw translateSdkError(error, `inference component ${component.name}`);
    }
    const runtime = described.RuntimeConfig;
    const current = runtime?.CurrentCopyCount ?? 0;
    return { current, desired: runtime?.DesiredCopyCount ?? current };
  }
}
