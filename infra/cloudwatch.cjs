// The CloudWatch side of the ops cockpit (docs/metrics.md), from infra/routes.yml: one dashboard
// of the stack and its alarms, reading the numbers GET /v1/metrics reads in AWS under the same
// names: SQS's per queue (AWS/SQS), SageMaker's per inference component (AWS/SageMaker and
// /aws/sagemaker/InferenceComponents), and the functions' EMF metrics (shared/core/metric-names.ts).
// Resolved by osls through ${file(infra/cloudwatch.cjs):resources}; CommonJS because osls
// require()s it.
//
// Alarms, each named `<prefix>-...`:
//   <queue>-oldest-message   a lane queue's oldest message older than the lane allows, 5 minutes running
//   <queue>-dlq-not-empty    a dead-letter queue holds a message
//   <route>-error-rate       more than 5% of a route's finished jobs failed or expired over 5 minutes
//   <component>-gpu-busy     a component's GPUs over 90% busy for 15 minutes (it needs more copies)
//   <component>-copies-at-max  an autoscaled component wanted its max_copies for 15 minutes
// They have no actions: subscribe a topic to them per stage (README, "Metrics").
const { readFileSync } = require("node:fs");
const { join, resolve } = require("node:path");
const YAML = require("yaml");
const { buildRouteCatalog, readProfileFiles } = require("../shared/core/routes.ts");
const { LANES, laneQueueSuffix } = require("../shared/core/lanes.ts");
const { sageMakerNames } = require("../shared/config.ts");
const names = require("../shared/core/metric-names.ts");

const INFERENCE_COMPONENT_NAMESPACE = "/aws/sagemaker/InferenceComponents";
/** The oldest message a lane may hold before its alarm: an interactive job waits seconds, a batch file's lines may wait an hour. */
const OLDEST_MESSAGE_SECONDS = { interactive: 300, batch: 3600 };
const ERROR_RATE = 0.05;
const GPU_BUSY_PERCENT = 90;
/** Minutes at max copies before it alarms: longer than a scale-out cooldown and a copy's warm-up. */
const AT_MAX_MINUTES = 15;

function readCatalog() {
  const raw = YAML.parse(readFileSync(join(__dirname, "routes.yml"), "utf8"));
  return buildRouteCatalog(readProfileFiles(raw, (reference) => readFileSync(resolve(__dirname, reference), "utf8")));
}

/** "llama-2-7b" -> "Llama27b": CloudFormation logical ids are alphanumeric. */
const logicalId = (name) => name.split(/[^a-zA-Z0-9]+/).map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join("");

/** The queues of every lane of every route, with their dead-letter queues, as infra/serverless-routes.cjs names them. */
function laneQueues(prefix, catalog) {
  return [...catalog.routes.keys()].flatMap((route) =>
    LANES.map((lane) => {
      const queue = `${prefix}-${route}${laneQueueSuffix(lane)}`;
      return { route, lane, queue, dlq: `${queue}-dlq` };
    }),
  );
}

/** The dimensions of a job metric of a route, as shared/observability.ts publishes it. */
const routeDimensions = (prefix, route) => ({ [names.SERVICE_DIMENSION]: names.SERVICE_NAME, [names.STACK_DIMENSION]: prefix, [names.ROUTE_DIMENSION]: route });
const componentDimensions = (prefix, component) => ({ [names.SERVICE_DIMENSION]: names.SERVICE_NAME, [names.STACK_DIMENSION]: prefix, [names.COMPONENT_DIMENSION]: component });
const asAlarmDimensions = (dimensions) => Object.entries(dimensions).map(([Name, Value]) => ({ Name, Value }));

function alarm(properties) {
  return { Type: "AWS::CloudWatch::Alarm", Properties: { TreatMissingData: "notBreaching", ...properties } };
}

/** The alarms of the stack, by logical id. */
function alarms(prefix, catalog) {
  const deployed = sageMakerNames(prefix);
  const resources = {};
  for (const { route, lane, queue, dlq } of laneQueues(prefix, catalog)) {
    const id = `${logicalId(route)}${logicalId(lane)}`;
    resources[`${id}OldestMessageAlarm`] = alarm({
      AlarmName: `${queue}-oldest-message`,
      AlarmDescription: `The oldest job in route ${route}'s ${lane} lane has waited over ${OLDEST_MESSAGE_SECONDS[lane]} s: the batchers are not keeping up (copies, concurrency) or not running.`,
      Namespace: "AWS/SQS",
      MetricName: "ApproximateAgeOfOldestMessage",
      Dimensions: [{ Name: "QueueName", Value: queue }],
      Statistic: "Maximum",
      Period: 60,
      EvaluationPeriods: 5,
      DatapointsToAlarm: 5,
      Threshold: OLDEST_MESSAGE_SECONDS[lane],
      ComparisonOperator: "GreaterThanThreshold",
    });
    resources[`${id}DeadLetterAlarm`] = alarm({
      AlarmName: `${dlq}-not-empty`,
      AlarmDescription: `Route ${route}'s ${lane}-lane dead-letter queue holds a message: a job was delivered max_receive_count times without an outcome.`,
      Namespace: "AWS/SQS",
      MetricName: "ApproximateNumberOfMessagesVisible",
      Dimensions: [{ Name: "QueueName", Value: dlq }],
      Statistic: "Maximum",
      Period: 60,
      EvaluationPeriods: 1,
      Threshold: 0,
      ComparisonOperator: "GreaterThanThreshold",
    });
  }
  for (const route of catalog.routes.keys()) {
    const dimensions = asAlarmDimensions(routeDimensions(prefix, route));
    const stat = (id, metric) => ({ Id: id, ReturnData: false, MetricStat: { Metric: { Namespace: names.EMF_NAMESPACE, MetricName: metric, Dimensions: dimensions }, Period: 300, Stat: "Sum" } });
    resources[`${logicalId(route)}ErrorRateAlarm`] = alarm({
      AlarmName: `${prefix}-${route}-error-rate`,
      AlarmDescription: `Over ${ERROR_RATE * 100}% of route ${route}'s finished jobs failed or expired in 5 minutes (JobErrorsByKind says which kind).`,
      Metrics: [
        stat("errors", names.JOB_METRICS.errors),
        stat("succeeded", names.JOB_METRICS.succeeded),
        { Id: "rate", Label: "error rate", ReturnData: true, Expression: "IF(errors + succeeded > 0, errors / (errors + succeeded), 0)" },
      ],
      EvaluationPeriods: 1,
      Threshold: ERROR_RATE,
      ComparisonOperator: "GreaterThanThreshold",
    });
  }
  for (const component of catalog.components.values()) {
    const name = deployed.inferenceComponent(component.name);
    resources[`${logicalId(component.name)}GpuBusyAlarm`] = alarm({
      AlarmName: `${name}-gpu-busy`,
      AlarmDescription: `${name}'s GPUs were over ${GPU_BUSY_PERCENT}% busy for 15 minutes: its copies are saturated.`,
      Namespace: INFERENCE_COMPONENT_NAMESPACE,
      MetricName: "GPUUtilizationNormalized",
      Dimensions: [{ Name: "InferenceComponentName", Value: name }],
      Statistic: "Average",
      Period: 300,
      EvaluationPeriods: 3,
      DatapointsToAlarm: 3,
      Threshold: GPU_BUSY_PERCENT,
      ComparisonOperator: "GreaterThanThreshold",
    });
    // A fixed component always runs its copies: only an autoscaled one can be held back by its max.
    if (!component.autoscaling) continue;
    resources[`${logicalId(component.name)}CopiesAtMaxAlarm`] = alarm({
      AlarmName: `${name}-copies-at-max`,
      AlarmDescription: `${name} wanted its max_copies (${component.autoscaling.max_copies}) for ${AT_MAX_MINUTES} minutes: raise max_copies in infra/routes.yml, or expect queues to grow.`,
      Namespace: names.EMF_NAMESPACE,
      MetricName: names.DESIRED_COPIES_METRIC,
      Dimensions: asAlarmDimensions(componentDimensions(prefix, component.name)),
      Statistic: "Maximum",
      Period: 60,
      EvaluationPeriods: AT_MAX_MINUTES,
      DatapointsToAlarm: AT_MAX_MINUTES,
      Threshold: component.autoscaling.max_copies,
      ComparisonOperator: "GreaterThanOrEqualToThreshold",
    });
  }
  return resources;
}

/** A metric of a widget: [namespace, name, dimension, value, ..., options]. */
const metric = (namespace, name, dimensions, options = {}) => [namespace, name, ...Object.entries(dimensions).flat(), options];
const widget = (title, metrics, extra = {}) => ({ type: "metric", width: 12, height: 6, properties: { title, view: "timeSeries", region: REGION, period: 60, metrics, ...extra } });
/** Replaced by the stack's region (Fn::Join with AWS::Region) once the body is JSON. */
const REGION = "@@REGION@@";

/** The dashboard's widgets: queues, latency, throughput, errors and cost's inputs, GPUs and copies. */
function widgets(prefix, catalog) {
  const deployed = sageMakerNames(prefix);
  const queues = laneQueues(prefix, catalog);
  const routes = [...catalog.routes.keys()];
  const components = [...catalog.components.values()];
  const job = (route, name, options) => metric(names.EMF_NAMESPACE, name, routeDimensions(prefix, route), options);
  const ic = (component) => ({ InferenceComponentName: deployed.inferenceComponent(component.name) });
  return [
    widget("Queue depth (visible messages)", queues.map((q) => metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", { QueueName: q.queue }, { stat: "Maximum", label: `${q.route} ${q.lane}` }))),
    widget("Age of oldest message (s)", queues.map((q) => metric("AWS/SQS", "ApproximateAgeOfOldestMessage", { QueueName: q.queue }, { stat: "Maximum", label: `${q.route} ${q.lane}` }))),
    ...routes.map((route) =>
      widget(
        `${route}: latency (ms), queue wait and inference`,
        [names.JOB_METRICS.endToEndMs, names.JOB_METRICS.queueWaitMs, names.JOB_METRICS.inferenceMs].flatMap((name) => ["p50", "p95", "p99"].map((stat) => job(route, name, { stat, label: `${name} ${stat}` }))),
      ),
    ),
    widget(
      "Generated tokens per second",
      routes.flatMap((route, i) => [job(route, names.JOB_METRICS.generatedTokens, { stat: "Sum", id: `t${i}`, visible: false }), [{ expression: `t${i} / PERIOD(t${i})`, label: route, id: `tps${i}` }]]),
    ),
    widget(
      "Job errors and DLQ depth",
      [
        ...routes.map((route) => job(route, names.JOB_METRICS.errors, { stat: "Sum", label: `${route} errors` })),
        ...queues.map((q) => metric("AWS/SQS", "ApproximateNumberOfMessagesVisible", { QueueName: q.dlq }, { stat: "Maximum", label: `${q.route} ${q.lane} DLQ` })),
      ],
    ),
    widget("GPU busy (%)", components.map((c) => metric(INFERENCE_COMPONENT_NAMESPACE, "GPUUtilizationNormalized", ic(c), { stat: "Average", label: c.name })), { yAxis: { left: { min: 0, max: 100 } } }),
    widget("Copies wanted", components.map((c) => metric(names.EMF_NAMESPACE, names.DESIRED_COPIES_METRIC, componentDimensions(prefix, c.name), { stat: "Maximum", label: c.name }))),
    widget("Concurrent requests per copy", components.map((c) => metric("AWS/SageMaker", "ConcurrentRequestsPerCopy", ic(c), { stat: "Average", label: c.name }))),
  ];
}

/** The dashboard's body, JSON with the region spliced in by CloudFormation. */
function dashboardBody(prefix, catalog) {
  const text = JSON.stringify({ widgets: widgets(prefix, catalog).map((w, i) => ({ ...w, x: (i % 2) * 12, y: Math.floor(i / 2) * 6 })) });
  const parts = text.split(REGION);
  return { "Fn::Join": ["", parts.flatMap((part, i) => (i === 0 ? [part] : [{ Ref: "AWS::Region" }, part]))] };
}

function generate({ prefix, catalog }) {
  return {
    Resources: {
      MetricsDashboard: { Type: "AWS::CloudWatch::Dashboard", Properties: { DashboardName: prefix, DashboardBody: dashboardBody(prefix, catalog) } },
      ...alarms(prefix, catalog),
    },
  };
}

module.exports.resources = async ({ resolveVariable }) => generate({ prefix: await resolveVariable("self:custom.prefix"), catalog: readCatalog() });
module.exports.generate = generate;
module.exports.dashboardBody = dashboardBody;
