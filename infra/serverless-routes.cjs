// Turns infra/routes.yml into the parts of serverless.yml that repeat per model route: one SQS
// queue and DLQ per lane of each route (shared/core/lanes.ts), and one event source mapping per
// queue. Resolved by osls through
// ${file(infra/serverless-routes.cjs):...}; CommonJS because osls require()s it.
const { readFileSync } = require("node:fs");
const { join } = require("node:path");
const YAML = require("yaml");

const BATCHER_TIMEOUT_SECONDS = 150;
/**
 * A queue's visibility timeout: six times the timeout of the function its event source mapping
 * invokes, as AWS recommends for SQS event sources (room for the poller's retries of a
 * throttled invocation; AWS refuses a mapping whose queue is below the function's timeout).
 * A message whose batcher died comes back after this long.
 */
const visibilityTimeout = (functionTimeoutSeconds) => 6 * functionTimeoutSeconds;
/**
 * SQS's longest retention, on both queues. A DLQ keeps a message's first enqueue time, so AWS
 * advises a DLQ retention above its source's; but a route queue that dropped jobs waiting out a
 * long outage would leave them QUEUED for good, so both take the maximum.
 */
const RETENTION_SECONDS = 14 * 24 * 3600;

function readRoutes() {
  return YAML.parse(readFileSync(join(__dirname, "routes.yml"), "utf8")).routes;
}

/** "llama-2-7b" -> "Llama27b": CloudFormation logical ids are alphanumeric. */
function logicalId(routeName) {
  return routeName.split(/[^a-zA-Z0-9]+/).map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join("");
}

/**
 * A route's lanes, as shared/core/lanes.ts names them. The batch lane keeps the logical ids and
 * queue names from before lanes, so that a deployed stack keeps its queues and their messages;
 * the interactive lane's are new.
 */
const LANES = [
  { lane: "interactive", id: "Interactive", suffix: "-interactive" },
  { lane: "batch", id: "", suffix: "" },
];

const queueId = (route, lane = LANES[1]) => `${logicalId(route)}${lane.id}Queue`;
const dlqId = (route, lane = LANES[1]) => `${logicalId(route)}${lane.id}DeadLetterQueue`;
const perLane = (fn) => Object.entries(readRoutes()).flatMap(([name, route]) => LANES.map((lane) => fn(name, route, lane)));

module.exports.batcherTimeoutSeconds = BATCHER_TIMEOUT_SECONDS;

/**
 * The batcher's timeout and its queues' visibility timeout, from the numbers that set them above,
 * for shared/config.ts to check the batcher's timing against at start.
 */
module.exports.batcherEnvironment = {
  BATCHLINE_BATCHER_TIMEOUT_SECONDS: String(BATCHER_TIMEOUT_SECONDS),
  BATCHLINE_QUEUE_VISIBILITY_TIMEOUT_SECONDS: String(visibilityTimeout(BATCHER_TIMEOUT_SECONDS)),
};

/**
 * One queue and DLQ per lane of each route, encrypted with SQS-managed keys (SSE-SQS: no KMS key, no KMS
 * permission for the functions), and their URLs as stack outputs. The DLQ's consumer is the
 * dead-letter function, which runs with the provider's timeout.
 */
module.exports.queues = async ({ resolveVariable }) => {
  const prefix = await resolveVariable("self:custom.prefix");
  const deadLetterTimeoutSeconds = Number(await resolveVariable("self:provider.timeout"));
  const resources = {};
  const outputs = {};
  perLane((name, route, lane) => {
    resources[dlqId(name, lane)] = {
      Type: "AWS::SQS::Queue",
      Properties: {
        QueueName: `${prefix}-${name}${lane.suffix}-dlq`,
        VisibilityTimeout: visibilityTimeout(deadLetterTimeoutSeconds),
        MessageRetentionPeriod: RETENTION_SECONDS,
        SqsManagedSseEnabled: true,
      },
    };
    resources[queueId(name, lane)] = {
      Type: "AWS::SQS::Queue",
      Properties: {
        QueueName: `${prefix}-${name}${lane.suffix}`,
        VisibilityTimeout: visibilityTimeout(BATCHER_TIMEOUT_SECONDS),
        MessageRetentionPeriod: RETENTION_SECONDS,
        SqsManagedSseEnabled: true,
        RedrivePolicy: { deadLetterTargetArn: { "Fn::GetAtt": [dlqId(name, lane), "Arn"] }, maxReceiveCount: route.max_receive_count },
      },
    };
    outputs[`${queueId(name, lane)}Url`] = { Description: `URL of the ${lane.lane} lane's queue of model route ${name}`, Value: { Ref: queueId(name, lane) } };
    outputs[`${dlqId(name, lane)}Url`] = { Description: `URL of the ${lane.lane} lane's dead-letter queue of model route ${name}`, Value: { Ref: dlqId(name, lane) } };
  });
  return { Resources: resources, Outputs: outputs };
};

/** One mapping per lane, with the route's settings: each lane's jobs reach a batcher on their own, without waiting for the other lane's deliveries. */
module.exports.batcherEvents = () =>
  perLane((name, route, lane) => ({
    sqs: {
      arn: { "Fn::GetAtt": [queueId(name, lane), "Arn"] },
      batchSize: route.window.batch_size,
      maximumBatchingWindow: route.window.batching_window_seconds,
      maximumConcurrency: route.window.maximum_concurrency,
      functionResponseType: "ReportBatchItemFailures",
    },
  }));

module.exports.deadLetterEvents = () =>
  perLane((name, _route, lane) => ({
    sqs: {
      arn: { "Fn::GetAtt": [dlqId(name, lane), "Arn"] },
      batchSize: 10,
      functionResponseType: "ReportBatchItemFailures",
    },
  }));

module.exports.routeQueueArns = () => perLane((name, _route, lane) => ({ "Fn::GetAtt": [queueId(name, lane), "Arn"] }));

module.exports.deadLetterQueueArns = () => perLane((name, _route, lane) => ({ "Fn::GetAtt": [dlqId(name, lane), "Arn"] }));
