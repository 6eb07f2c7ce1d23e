// Turns infra/routes.yml into the parts of serverless.yml that repeat per model route: one SQS
// queue and DLQ per route, and one event source mapping per queue. Resolved by osls through
// ${file(infra/serverless-routes.cjs):...}; CommonJS because osls require()s it.
const { readFileSync } = require("node:fs");
const { join } = require("node:path");
const YAML = require("yaml");

const BATCHER_TIMEOUT_SECONDS = 150;
// AWS requires the queue's visibility timeout to cover the function timeout; twice leaves room
// for the batcher's own ChangeMessageVisibility retries.
const VISIBILITY_TIMEOUT_SECONDS = 2 * BATCHER_TIMEOUT_SECONDS;

function readRoutes() {
  return YAML.parse(readFileSync(join(__dirname, "routes.yml"), "utf8")).routes;
}

/** "llama-2-7b" -> "Llama27b": CloudFormation logical ids are alphanumeric. */
function logicalId(routeName) {
  return routeName.split(/[^a-zA-Z0-9]+/).map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join("");
}

const queueId = (route) => `${logicalId(route)}Queue`;
const dlqId = (route) => `${logicalId(route)}DeadLetterQueue`;

module.exports.batcherTimeoutSeconds = BATCHER_TIMEOUT_SECONDS;

module.exports.queues = async ({ resolveVariable }) => {
  const prefix = await resolveVariable("self:custom.prefix");
  const resources = {};
  for (const [name, route] of Object.entries(readRoutes())) {
    resources[dlqId(name)] = {
      Type: "AWS::SQS::Queue",
      Properties: { QueueName: `${prefix}-${name}-dlq`, MessageRetentionPeriod: 1209600 },
    };
    resources[queueId(name)] = {
      Type: "AWS::SQS::Queue",
      Properties: {
        QueueName: `${prefix}-${name}`,
        VisibilityTimeout: VISIBILITY_TIMEOUT_SECONDS,
        MessageRetentionPeriod: 1209600,
        RedrivePolicy: { deadLetterTargetArn: { "Fn::GetAtt": [dlqId(name), "Arn"] }, maxReceiveCount: route.max_receive_count },
      },
    };
  }
  return { Resources: resources };
};

module.exports.batcherEvents = () =>
  Object.entries(readRoutes()).map(([name, route]) => ({
    sqs: {
      arn: { "Fn::GetAtt": [queueId(name), "Arn"] },
      batchSize: route.window.batch_size,
      maximumBatchingWindow: route.window.batching_window_seconds,
      maximumConcurrency: route.window.maximum_concurrency,
      functionResponseType: "ReportBatchItemFailures",
    },
  }));

module.exports.deadLetterEvents = () =>
  Object.keys(readRoutes()).map((name) => ({
    sqs: {
      arn: { "Fn::GetAtt": [dlqId(name), "Arn"] },
      batchSize: 10,
      functionResponseType: "ReportBatchItemFailures",
    },
  }));

module.exports.routeQueueArns = () => Object.keys(readRoutes()).map((name) => ({ "Fn::GetAtt": [queueId(name), "Arn"] }));

module.exports.deadLetterQueueArns = () => Object.keys(readRoutes()).map((name) => ({ "Fn::GetAtt": [dlqId(name), "Arn"] }));
