import { createRequire } from "node:module";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { loadRouteCatalog, sageMakerNames } from "#shared/config";
import { DESIRED_COPIES_METRIC, EMF_NAMESPACE, JOB_METRICS } from "#shared/core/metric-names";
import { packageTemplate } from "#local/template";

// The CloudWatch dashboard and alarms of the template `osls package` generates (infra/cloudwatch.cjs),
// checked against the metric names the functions publish (shared/core/metric-names.ts) and
// against SQS's and SageMaker's.

type Resource = { Type: string; Properties: Record<string, any> };

const projectDir = process.cwd();
const stage = "cw";
const prefix = `batchline-${stage}`;
const catalog = loadRouteCatalog(join(projectDir, "infra", "routes.yml"));
const deployed = sageMakerNames(prefix);
const { dashboardBody } = createRequire(import.meta.url)("../../infra/cloudwatch.cjs") as { dashboardBody: (prefix: string, catalog: unknown) => { "Fn::Join": [string, unknown[]] } };

let resources: Record<string, Resource>;
beforeAll(async () => {
  resources = ((await packageTemplate({ projectDir, stage })) as { Resources: Record<string, Resource> }).Resources;
});

const alarms = () => Object.values(resources).filter((r) => r.Type === "AWS::CloudWatch::Alarm").map((r) => r.Properties);
const alarmNamed = (name: string) => alarms().find((a) => a.AlarmName === name);
const laneQueues = [...catalog.routes.keys()].flatMap((route) => [`${prefix}-${route}-interactive`, `${prefix}-${route}`]);
/** The dashboard's JSON with the region CloudFormation splices in. */
const body = (join: { "Fn::Join": [string, unknown[]] }) => JSON.parse(join["Fn::Join"][1].map((p) => (typeof p === "string" ? p : "us-east-1")).join(join["Fn::Join"][0]));

describe("CloudWatch alarms", () => {
  it("watch every lane queue's oldest message, interactive lanes sooner than batch ones", () => {
    for (const queue of laneQueues) {
      const alarm = alarmNamed(`${queue}-oldest-message`);
      expect(alarm, queue).toMatchObject({ Namespace: "AWS/SQS", MetricName: "ApproximateAgeOfOldestMessage", Dimensions: [{ Name: "QueueName", Value: queue }], Statistic: "Maximum", ComparisonOperator: "GreaterThanThreshold" });
    }
    const [interactive, batch] = [alarmNamed(`${prefix}-llama-2-7b-interactive-oldest-message`), alarmNamed(`${prefix}-llama-2-7b-oldest-message`)];
    expect(interactive?.Threshold).toBeLessThan(batch?.Threshold);
  });

  it("go off at the first message in any dead-letter queue", () => {
    for (const queue of laneQueues) {
      expect(alarmNamed(`${queue}-dlq-not-empty`), queue).toMatchObject({ Namespace: "AWS/SQS", MetricName: "ApproximateNumberOfMessagesVisible", Dimensions: [{ Name: "QueueName", Value: `${queue}-dlq` }], Threshold: 0, ComparisonOperator: "GreaterThanThreshold" });
    }
  });

  it("compute each route's error rate from the functions' EMF metrics of that route and stack", () => {
    for (const route of catalog.routes.keys()) {
      const alarm = alarmNamed(`${prefix}-${route}-error-rate`);
      const stats = alarm?.Metrics.filter((m: any) => m.MetricStat).map((m: any) => m.MetricStat.Metric);
      expect(stats, route).toEqual([JOB_METRICS.errors, JOB_METRICS.succeeded].map((MetricName) => ({
        Namespace: EMF_NAMESPACE, MetricName, Dimensions: [{ Name: "service", Value: "batchline" }, { Name: "Stack", Value: prefix }, { Name: "Route", Value: route }],
      })));
      expect(alarm?.Metrics.find((m: any) => m.ReturnData)?.Expression).toBe("IF(errors + succeeded > 0, errors / (errors + succeeded), 0)");
      expect(alarm?.Threshold).toBe(0.05);
    }
  });

  it("watch each component's GPUs, by its deployed name, and each autoscaled one's copies against its max_copies", () => {
    for (const component of catalog.components.values()) {
      const name = deployed.inferenceComponent(component.name);
      expect(alarmNamed(`${name}-gpu-busy`), name).toMatchObject({ Namespace: "/aws/sagemaker/InferenceComponents", MetricName: "GPUUtilizationNormalized", Dimensions: [{ Name: "InferenceComponentName", Value: name }], Threshold: 90 });
      const atMax = alarmNamed(`${name}-copies-at-max`);
      if (!component.autoscaling) {
        expect(atMax, name).toBeUndefined();
        continue;
      }
      expect(atMax, name).toMatchObject({ Namespace: EMF_NAMESPACE, MetricName: DESIRED_COPIES_METRIC, Threshold: component.autoscaling.max_copies, ComparisonOperator: "GreaterThanOrEqualToThreshold", Statistic: "Maximum" });
      expect(atMax?.Dimensions).toContainEqual({ Name: "InferenceComponent", Value: component.name });
    }
  });

  it("treat a period with no datapoint as fine: an idle queue or route publishes none", () => {
    for (const alarm of alarms().filter((a) => !String(a.AlarmName).endsWith("-no-capacity"))) expect(alarm.TreatMissingData, alarm.AlarmName).toBe("notBreaching");
  });
});

describe("the CloudWatch dashboard", () => {
  it("is one dashboard of the stack, its region spliced in by CloudFormation", () => {
    const dashboards = Object.values(resources).filter((r) => r.Type === "AWS::CloudWatch::Dashboard");
    expect(dashboards).toHaveLength(1);
    expect(dashboards[0]?.Properties.DashboardName).toBe(prefix);
    const join = dashboards[0]?.Properties.DashboardBody;
    expect(join["Fn::Join"][1]).toContainEqual({ Ref: "AWS::Region" });
    for (const widget of body(join).widgets) expect(widget.properties.region).toBe("us-east-1");
  });

  it("charts queues, latency split into queue wait and inference, tokens, errors, GPUs and copies, under the names the functions publish", () => {
    const widgets = body(dashboardBody(prefix, catalog)).widgets as { properties: { title: string; metrics: unknown[][] } }[];
    const metricNames = new Set(widgets.flatMap((w) => w.properties.metrics.map((m) => m[1]).filter((n) => typeof n === "string")));
    for (const name of ["ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage", "GPUUtilizationNormalized", "ConcurrentRequestsPerCopy", DESIRED_COPIES_METRIC, JOB_METRICS.queueWaitMs, JOB_METRICS.inferenceMs, JOB_METRICS.endToEndMs, JOB_METRICS.generatedTokens, JOB_METRICS.errors]) {
      expect(metricNames, name).toContain(name);
    }
    const latency = widgets.find((w) => w.properties.title === "llama-2-7b: latency (ms), queue wait and inference");
    expect(latency?.properties.metrics.map((m) => `${m[1]} ${(m.at(-1) as { stat: string }).stat}`)).toContain(`${JOB_METRICS.queueWaitMs} p95`);
    const tokens = widgets.find((w) => w.properties.title === "Generated tokens per second")?.properties.metrics;
    expect(tokens).toContainEqual([{ expression: "t0 / PERIOD(t0)", label: "llama-2-7b", id: "tps0" }]);
  });
});
