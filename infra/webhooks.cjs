// The webhooks queue and its DLQ, and the delivery function's event source mapping: resolved by
// osls through ${file(infra/webhooks.cjs):...}. One queue for every tenant: an event is a few
// hundred bytes and its delivery a POST, far from needing a queue per route or tenant.

/**
 * Attempts in all per endpoint (shared/core/webhooks.ts MAX_DELIVERY_ATTEMPTS, which a unit test
 * holds equal): the first on the event's message, the rest as receives of the endpoint's own
 * delivery message, so that message is received MAX_DELIVERY_ATTEMPTS - 1 times before the DLQ.
 */
const MAX_DELIVERY_ATTEMPTS = 13;
/** The delivery function's timeout: its posts run in parallel, 10 s each at most. */
const DELIVERY_TIMEOUT_SECONDS = 29;
/**
 * Six times the function's timeout, as AWS recommends for an SQS event source: a message whose
 * invocation died comes back after this long. Retries set their own visibility (the backoff).
 */
const VISIBILITY_TIMEOUT_SECONDS = 6 * DELIVERY_TIMEOUT_SECONDS;
/** SQS's longest: the last retry comes about 29 hours after the event, and the DLQ keeps a message's first enqueue time. */
const RETENTION_SECONDS = 14 * 24 * 3600;

module.exports.maxDeliveryAttempts = MAX_DELIVERY_ATTEMPTS;
module.exports.deliveryTimeoutSeconds = DELIVERY_TIMEOUT_SECONDS;

module.exports.resources = async ({ resolveVariable }) => {
  const prefix = await resolveVariable("self:custom.prefix");
  const queue = (name, extra = {}) => ({
    Type: "AWS::SQS::Queue",
    Properties: { QueueName: name, VisibilityTimeout: VISIBILITY_TIMEOUT_SECONDS, MessageRetentionPeriod: RETENTION_SECONDS, SqsManagedSseEnabled: true, ...extra },
  });
  return {
    Resources: {
      // Nothing consumes it: an event there failed at every attempt for a day; ops redrive it.
      WebhooksDeadLetterQueue: queue(`${prefix}-webhooks-dlq`),
      WebhooksQueue: queue(`${prefix}-webhooks`, {
        RedrivePolicy: { deadLetterTargetArn: { "Fn::GetAtt": ["WebhooksDeadLetterQueue", "Arn"] }, maxReceiveCount: MAX_DELIVERY_ATTEMPTS - 1 },
      }),
    },
    Outputs: {
      WebhooksQueueUrl: { Description: "URL of the webhooks queue (events to deliver)", Value: { Ref: "WebhooksQueue" } },
      WebhooksDeadLetterQueueUrl: { Description: "URL of the webhooks dead-letter queue (deliveries given up)", Value: { Ref: "WebhooksDeadLetterQueue" } },
    },
  };
};

module.exports.deliveryEvents = () => [
  { sqs: { arn: { "Fn::GetAtt": ["WebhooksQueue", "Arn"] }, batchSize: 10, functionResponseType: "ReportBatchItemFailures" } },
];

module.exports.webhookQueueArns = () => [{ "Fn::GetAtt": ["WebhooksQueue", "Arn"] }];
