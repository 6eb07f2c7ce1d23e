import { DescribeInferenceComponentCommand, type SageMakerClient } from "@aws-sdk/client-sagemaker";
import type { Component } from "../core/routes.ts";
import type { CopyCount, FleetView } from "../ports.ts";
import { translateSdkError } from "./errors.ts";

/**
 * Reads a component's copies from SageMaker's control plane (DescribeInferenceComponent): the
 * copies running or starting now, and the count autoscaling last asked for.
 */
export class SageMakerFleetView implements FleetView {
  readonly #client: SageMakerClient;

  constructor(options: { client: SageMakerClient }) {
    this.#client = options.client;
  }

  async copies(component: Component): Promise<CopyCount> {
    let described;
    try {
      described = await this.#client.send(new DescribeInferenceComponentCommand({ InferenceComponentName: component.name }));
    } catch (error) {
      throw translateSdkError(error, `inference component ${component.name}`);
    }
    const runtime = described.RuntimeConfig;
    const current = runtime?.CurrentCopyCount ?? 0;
    return { current, desired: runtime?.DesiredCopyCount ?? current };
  }
}
