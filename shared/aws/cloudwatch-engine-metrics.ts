import { GetMetricDataCommand, type CloudWatchClient, type MetricDataQuery } from "@aws-sdk/client-cloudwatch";
import type { SageMakerNames } from "../config.ts";
import type { ComponentReading } from "../core/metrics.ts";
import type { Component } from "../core/routes.ts";
import type { EngineMetrics, FleetView } from "../ports.ts";
import { translateSdkError } from "./errors.ts";

/** Where SageMaker publishes an inference component's utilization (GPUUtilizationNormalized, 0-100 per copy). */
export const INFERENCE_COMPONENT_NAMESPACE = "/aws/sagemaker/InferenceComponents";

/**
 * An inference component in AWS: its copies from DescribeInferenceComponent (the FleetView the
 * batcher reads), its load from CloudWatch: GPUUtilizationNormalized averaged over the window
 * (GPU busy), and the latest minute of AWS/SageMaker ConcurrentRequestsPerCopy times the serving
 * copies (requests in the containers, running or queued there: the nearest CloudWatch has to
 * running sequences). KV-cache tokens and per-copy figures are not in CloudWatch without the
 * endpoint's enhanced metrics: they are left out (null in the JSON).
 */
export class CloudWatchEngineMetrics implements EngineMetrics {
  readonly #client: CloudWatchClient;
  readonly #fleet: FleetView;
  readonly #names: Pick<SageMakerNames, "inferenceComponent">;

  constructor(options: { client: CloudWatchClient; fleet: FleetView; names: Pick<SageMakerNames, "inferenceComponent"> }) {
    this.#client = options.client;
    this.#fleet = options.fleet;
    this.#names = options.names;
  }

  async read(component: Component, now: Date, windowMs: number): Promise<ComponentReading> {
    const name = this.#names.inferenceComponent(component.name);
    const dimensions = [{ Name: "InferenceComponentName", Value: name }];
    const windowSeconds = Math.max(60, Math.round(windowMs / 60_000) * 60);
    const queries: MetricDataQuery[] = [
      { Id: "gpu", MetricStat: { Metric: { Namespace: INFERENCE_COMPONENT_NAMESPACE, MetricName: "GPUUtilizationNormalized", Dimensions: dimensions }, Period: windowSeconds, Stat: "Average" } },
      { Id: "concurrency", MetricStat: { Metric: { Namespace: "AWS/SageMaker", MetricName: "ConcurrentRequestsPerCopy", Dimensions: dimensions }, Period: 60, Stat: "Average" } },
    ];
    const [copies, data] = await Promise.all([
      this.#fleet.copies(component),
      this.#client
        .send(new GetMetricDataCommand({ StartTime: new Date(now.getTime() - windowSeconds * 1000), EndTime: now, ScanBy: "TimestampDescending", MetricDataQueries: queries }))
        .catch((error: unknown) => {
          throw translateSdkError(error, `CloudWatch metrics of inference component ${name}`);
        }),
    ]);
    const latest = (id: string) => data.MetricDataResults?.find((r) => r.Id === id)?.Values?.[0];
    const serving = Math.min(copies.current, copies.desired);
    const gpuPercent = latest("gpu");
    const concurrency = latest("concurrency");
    return {
      copies: { serving, warming: Math.max(0, copies.desired - copies.current), draining: Math.max(0, copies.current - copies.desired) },
      runningSequences: concurrency === undefined ? undefined : concurrency * serving,
      gpuBusyFraction: gpuPercent === undefined ? undefined : gpuPercent / 100,
      perCopy: [],
    };
  }
}
