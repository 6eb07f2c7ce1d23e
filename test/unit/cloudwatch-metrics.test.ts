import { GetMetricDataCommand, type CloudWatchClient, type GetMetricDataCommandInput, type GetMetricDataCommandOutput } from "@aws-sdk/client-cloudwatch";
import { describe, expect, it } from "vitest";
import { CloudWatchEngineMetrics, INFERENCE_COMPONENT_NAMESPACE } from "#shared/aws/cloudwatch-engine-metrics";
import { cloudWatchOldestAge } from "#shared/aws/sqs-queue-metrics";
import { sageMakerNames } from "#shared/config";
import { RetryableError } from "#shared/core/errors";
import { defaultCatalog, SettableFleet } from "../helpers/fakes.ts";

// No CloudWatch server runs locally: the adapters' requests and their reading of the answers are
// checked against a hand-written client whose send() records the command and answers as
// CloudWatch does (MetricDataResults by query id, newest value first with ScanBy TimestampDescending).

function fakeCloudWatch(answer: (input: GetMetricDataCommandInput) => Partial<GetMetricDataCommandOutput> | Error) {
  const sent: GetMetricDataCommandInput[] = [];
  const client = {
    async send(command: unknown) {
      if (!(command instanceof GetMetricDataCommand)) throw new Error(`unexpected command ${String(command)}`);
      sent.push(command.input);
      const out = answer(command.input);
      if (out instanceof Error) throw out;
      return { $metadata: {}, ...out };
    },
  };
  return { client: client as unknown as CloudWatchClient, sent };
}

const now = new Date("2026-01-01T12:00:00Z");

describe("oldest message age from CloudWatch", () => {
  it("asks AWS/SQS ApproximateAgeOfOldestMessage of the queue, 1-minute Maximum over 5 minutes, and takes the newest", async () => {
    const { client, sent } = fakeCloudWatch(() => ({ MetricDataResults: [{ Id: "age", Values: [95, 40], Timestamps: [now, now] }] }));
    expect(await cloudWatchOldestAge(client)("batchline-prod-llama-2-7b", now)).toBe(95);
    expect(sent[0]).toMatchObject({
      StartTime: new Date(now.getTime() - 300_000),
      EndTime: now,
      ScanBy: "TimestampDescending",
      MetricDataQueries: [{ Id: "age", MetricStat: { Metric: { Namespace: "AWS/SQS", MetricName: "ApproximateAgeOfOldestMessage", Dimensions: [{ Name: "QueueName", Value: "batchline-prod-llama-2-7b" }] }, Period: 60, Stat: "Maximum" } }],
    });
  });

  it("has none for a queue with no datapoint, and turns a throttle into a RetryableError", async () => {
    expect(await cloudWatchOldestAge(fakeCloudWatch(() => ({ MetricDataResults: [{ Id: "age", Values: [] }] })).client)("q", now)).toBeUndefined();
    const throttled = Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException", $metadata: { httpStatusCode: 400 } });
    await expect(cloudWatchOldestAge(fakeCloudWatch(() => throttled).client)("q", now)).rejects.toThrow(RetryableError);
  });
});

describe("engine readings from CloudWatch", () => {
  const catalog = defaultCatalog();
  const component = [...catalog.components.values()][0]!;
  const names = sageMakerNames("batchline-prod");

  it("reads the component's GPU utilization and concurrency by its deployed name, and its copies from DescribeInferenceComponent", async () => {
    const { client, sent } = fakeCloudWatch(() => ({ MetricDataResults: [{ Id: "gpu", Values: [62.5] }, { Id: "concurrency", Values: [30, 10] }] }));
    const fleet = new SettableFleet();
    fleet.counts.set(component.name, { current: 2, desired: 3 });
    const reading = await new CloudWatchEngineMetrics({ client, fleet, names }).read(component, now, 300_000);
    expect(reading).toEqual({ copies: { serving: 2, warming: 1, draining: 0 }, runningSequences: 60, gpuBusyFraction: 0.625, perCopy: [] });
    const dimensions = [{ Name: "InferenceComponentName", Value: names.inferenceComponent(component.name) }];
    expect(sent[0]?.MetricDataQueries).toEqual([
      { Id: "gpu", MetricStat: { Metric: { Namespace: INFERENCE_COMPONENT_NAMESPACE, MetricName: "GPUUtilizationNormalized", Dimensions: dimensions }, Period: 300, Stat: "Average" } },
      { Id: "concurrency", MetricStat: { Metric: { Namespace: "AWS/SageMaker", MetricName: "ConcurrentRequestsPerCopy", Dimensions: dimensions }, Period: 60, Stat: "Average" } },
    ]);
  });

  it("counts copies above the desired count as draining, and leaves out what CloudWatch has no datapoint of", async () => {
    const { client } = fakeCloudWatch(() => ({ MetricDataResults: [] }));
    const fleet = new SettableFleet();
    fleet.counts.set(component.name, { current: 2, desired: 1 });
    const reading = await new CloudWatchEngineMetrics({ client, fleet, names }).read(component, now, 300_000);
    expect(reading).toEqual({ copies: { serving: 1, warming: 0, draining: 1 }, runningSequences: undefined, gpuBusyFraction: undefined, perCopy: [] });
  });
});
