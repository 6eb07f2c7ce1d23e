import { CloudWatchClient } from "@aws-sdk/client-cloudwatch";
import type { Config } from "../config.ts";
import type { MetricsSourceKind } from "../core/metrics.ts";
import type { EngineMetrics, FinishedJobIndex, FleetView, QueueMetrics } from "../ports.ts";
import type { Clients } from "./clients.ts";
import { CloudWatchEngineMetrics } from "./cloudwatch-engine-metrics.ts";
import { DynamoDbFinishedJobs } from "./dynamodb-finished-jobs.ts";
import { EmulatorEngineMetrics } from "./emulator-engine-metrics.ts";
import { cloudWatchOldestAge, fauxqsOldestAge, SqsQueueMetrics } from "./sqs-queue-metrics.ts";

export type MetricsSources = {
  readonly metricsSource: MetricsSourceKind;
  readonly queueMetrics: QueueMetrics;
  readonly engineMetrics: EngineMetrics;
  readonly finishedJobs: FinishedJobIndex;
};

/**
 * What GET /v1/metrics reads, by BATCHLINE_METRICS_SOURCE: queue depths (GetQueueAttributes) and
 * the finished-jobs index are the same calls in both stacks; what CloudWatch holds in AWS (oldest
 * message age, GPU utilization) comes locally from fauxqs and the emulator, where no CloudWatch runs.
 */
export function metricsSources(config: Config, clients: Pick<Clients, "sqs" | "dynamodb">, fleet: FleetView): MetricsSources {
  const finishedJobs = new DynamoDbFinishedJobs({ client: clients.dynamodb, tableName: config.tables.jobs });
  const source = config.metricsSource;
  if (source.kind === "embedded") {
    return {
      metricsSource: "embedded",
      queueMetrics: new SqsQueueMetrics({ client: clients.sqs, oldestAge: fauxqsOldestAge(source.sqsEndpoint) }),
      engineMetrics: new EmulatorEngineMetrics({ endpoint: source.emulatorEndpoint }),
      finishedJobs,
    };
  }
  const cloudwatch = new CloudWatchClient({});
  return {
    metricsSource: "cloudwatch",
    queueMetrics: new SqsQueueMetrics({ client: clients.sqs, oldestAge: cloudWatchOldestAge(cloudwatch) }),
    engineMetrics: new CloudWatchEngineMetrics({ client: cloudwatch, fleet, names: config.sagemaker }),
    finishedJobs,
  };
}
