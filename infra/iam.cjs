// One IAM role per function, each allowed only what its code calls (least privilege), resolved by
// osls through ${file(infra/iam.cjs):roles}; functions pick theirs with `role:` in serverless.yml.
// The table below is the whole policy: a function, the tables and actions it uses, and the rest.
// Every statement names its resources: the function's own log group, the tables and the indexes
// it queries, the queues, the WebSocket stage's connections. The exceptions are X-Ray's and
// CloudWatch's GetMetricData, whose actions have no resource to name (AWS requires "*").
const { routeQueueArns, deadLetterQueueArns } = require("./serverless-routes.cjs");
const { sageMakerArns } = require("./sagemaker.cjs");
const { webhookQueueArns } = require("./webhooks.cjs");

const join = (...parts) => ({ "Fn::Join": ["", parts] });
const partition = { Ref: "AWS::Partition" };
const region = { Ref: "AWS::Region" };
const account = { Ref: "AWS::AccountId" };

const tableArn = (prefix, name) => join("arn:", partition, ":dynamodb:", region, ":", account, `:table/${prefix}-${name}`);
const indexArn = (prefix, name, index) => join("arn:", partition, ":dynamodb:", region, ":", account, `:table/${prefix}-${name}/index/${index}`);
/** The indexes the code queries (IndexName in shared/aws), by table: Query on them needs their ARN. */
const INDEXES = { jobs: ["batch-index"], batches: ["tenant-index", "sweep-index"], subscriptions: ["connection-index"], "api-keys": ["tenant-index"], files: ["tenant-index"] };

const READ_KEY = { "api-keys": ["GetItem"] };
/** Submitting charges the tenant's quotas; every terminal transition gives the job's slot back. */
const QUOTAS = { tenants: ["GetItem"], usage: ["UpdateItem"] };
const RELEASE = { usage: ["UpdateItem"] };
/** The slot sweep (app/slot-sweep.ts) scans the usage table for the tenants' counters and reads a chunk's slots. */
const SLOT_SWEEP = { usage: ["UpdateItem", "GetItem", "Scan"] };
const NOTIFY = { subscriptions: ["Query", "BatchWriteItem"] };
/** Cancelling a running job marks it in the capacity ledger, for its batcher to abort its call. */
const CANCEL_MARK = { capacity: ["PutItem"] };
/**
 * Tickets at submit, the jobs a cancel takes out of line, a waiting job's board on GET and on
 * subscribe, and a subscriber's watch (core/queue-position.ts).
 */
const QUEUE_BOARD = { "queue-board": ["GetItem", "UpdateItem"] };
/** Whoever may see an OpenAI batch's last job end moves it to finalizing and sends its finalize step. */
const TO_FINALIZE = { batchControl: true };
/**
 * Files of OpenAI batches: the files table (the files branch's), and their bytes in the files
 * bucket, under files/ only: read the input, write the output and error files.
 */
const FILES_READ = { files: ["GetItem"] };
const FILES_WRITE = { files: ["GetItem", "PutItem"] };
/** SendMessage covers SendMessageBatch; the queue's URL comes from GetQueueUrl. */
const SQS_SEND = ["sqs:SendMessage", "sqs:GetQueueUrl"];
/** What Lambda's event source mapping does with the function's role: poll, delete, read attributes. */
const SQS_MAPPING = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"];
/** The batcher also pulls more itself (top-up) and puts jobs back with a delay. */
const SQS_CONSUME = [...SQS_MAPPING, "sqs:ChangeMessageVisibility"];

/**
 * The files bucket's objects: HeadObject is s3:GetObject; a presigned URL acts with the role that
 * signed it, so the PUT a client makes needs s3:PutObject here. With s3:ListBucket on the bucket
 * (and only that), a missing object answers 404 rather than 403 (an upload not PUT yet).
 */
const FILES_BUCKET = ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"];

/**
 * A batch's terminal transition puts its webhook event on the webhooks queue: the functions that
 * end a batch (batch control's ingest and finalize, the sweep, a create refused late) send there.
 */
const WEBHOOK_SEND = SQS_SEND;

/** function -> { tables: { table: [DynamoDB actions] }, indexQueries?: { table: [indexes] }, routeQueues?, deadLetterQueues?, webhookQueue?, connections?, sagemaker?, filesBucket? } */
const POLICIES = {
  models: { tables: READ_KEY },
  jobs: {
    tables: { ...READ_KEY, ...NOTIFY, ...QUOTAS, ...CANCEL_MARK, ...QUEUE_BOARD, jobs: ["PutItem", "GetItem", "UpdateItem", "Query"], "idempotency-keys": ["PutItem", "GetItem", "DeleteItem"], batches: ["GetItem", "UpdateItem"] },
    routeQueues: SQS_SEND,
    connections: true,
    ...TO_FINALIZE,
  },
  batches: {
    tables: { ...READ_KEY, ...NOTIFY, ...QUOTAS, ...CANCEL_MARK, ...QUEUE_BOARD, ...FILES_READ, jobs: ["BatchWriteItem", "GetItem", "UpdateItem", "Query"], batches: ["PutItem", "GetItem", "UpdateItem", "Query"] },
    routeQueues: SQS_SEND,
    connections: true,
    ...TO_FINALIZE,
    webhookQueue: WEBHOOK_SEND,
  },
  batchControl: {
    tables: { ...NOTIFY, ...QUOTAS, ...CANCEL_MARK, ...QUEUE_BOARD, ...FILES_WRITE, jobs: ["BatchWriteItem", "PutItem", "GetItem", "UpdateItem", "Query"], batches: ["GetItem", "UpdateItem"] },
    routeQueues: SQS_SEND,
    batchControlQueue: SQS_MAPPING,
    connections: true,
    ...TO_FINALIZE,
    filesBucket: ["s3:GetObject", "s3:PutObject"],
    webhookQueue: WEBHOOK_SEND,
  },
  batchSweep: {
    tables: { ...NOTIFY, ...SLOT_SWEEP, ...CANCEL_MARK, ...QUEUE_BOARD, jobs: ["GetItem", "UpdateItem", "Query"], batches: ["GetItem", "UpdateItem", "Query"] },
    connections: true,
    ...TO_FINALIZE,
    webhookQueue: WEBHOOK_SEND,
  },
  files: { tables: { ...READ_KEY, files: ["PutItem", "GetItem", "UpdateItem", "DeleteItem", "Query"] }, filesBucket: FILES_BUCKET },
  // Predictions and trace exports read the route's recent jobs: the jobs table's model-index only.
  routeSettings: { tables: { ...READ_KEY, "route-settings": ["GetItem", "PutItem"] }, indexQueries: { jobs: ["model-index"] } },
  wsTickets: { tables: { ...READ_KEY, "ws-tickets": ["PutItem"] } },
  wsConnect: { tables: { ...READ_KEY, "ws-tickets": ["DeleteItem"], connections: ["PutItem"] } },
  wsDisconnect: { tables: { connections: ["DeleteItem"], subscriptions: ["Query", "BatchWriteItem"] } },
  wsMessage: {
    tables: {
      connections: ["GetItem"],
      subscriptions: ["PutItem", "Query", "BatchWriteItem"],
      jobs: ["PutItem", "GetItem", "UpdateItem", "Query"],
      "idempotency-keys": ["PutItem", "GetItem", "DeleteItem"],
      batches: ["GetItem", "UpdateItem"],
      ...QUOTAS,
      ...CANCEL_MARK,
      ...QUEUE_BOARD,
    },
    routeQueues: SQS_SEND,
    connections: true,
    ...TO_FINALIZE,
  },
  batcher: {
    tables: { ...NOTIFY, ...RELEASE, jobs: ["GetItem", "UpdateItem", "Query"], batches: ["GetItem", "UpdateItem"], "route-settings": ["GetItem"], capacity: ["Query", "PutItem", "DeleteItem"], "queue-board": ["GetItem", "UpdateItem", "Query", "BatchWriteItem"] },
    routeQueues: [...SQS_CONSUME, ...SQS_SEND],
    connections: true,
    sagemaker: true,
    ...TO_FINALIZE,
  },
  deadLetter: {
    tables: { ...NOTIFY, ...RELEASE, jobs: ["GetItem", "UpdateItem", "Query"], batches: ["GetItem", "UpdateItem"] },
    deadLetterQueues: SQS_MAPPING,
    connections: true,
    ...TO_FINALIZE,
  },
  // GET /v1/metrics: queue depths, the jobs index of finished jobs, the components' copies, and CloudWatch.
  metrics: {
    // The components' profile drift, which the batchers store in the capacity ledger.
    tables: { ...READ_KEY, capacity: ["GetItem"] },
    // The sparse index of finished jobs only: not the table, nor its other indexes.
    indexQueries: { jobs: ["route-finished-index"] },
    routeQueues: ["sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
    deadLetterQueues: ["sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
    sagemakerDescribe: true,
    cloudWatchRead: true,
  },
  webhooks: { tables: { ...READ_KEY, "webhook-endpoints": ["Query", "PutItem", "DeleteItem"] } },
  // Its mapping reads the queue; it sends an endpoint's retries there and hides them for the backoff.
  webhookDelivery: { tables: { "webhook-endpoints": ["Query"] }, webhookQueue: [...SQS_CONSUME, ...SQS_SEND] },
};

/**
 * @param fn the function's name in serverless.yml: its log group is /aws/lambda/<prefix>-<fn>
 * @param stage the WebSocket API's stage, the only one whose connections it may post to
 * @param tracing X-Ray on: the function's segments go to X-Ray
 */
function statements({ prefix, stage, fn, tracing }, policy) {
  const list = [
    // osls creates the log group (with its retention): the function only writes to it.
    { Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: [join("arn:", partition, ":logs:", region, ":", account, `:log-group:/aws/lambda/${prefix}-${fn}:*`)] },
  ];
  for (const [name, actions] of Object.entries(policy.tables ?? {})) {
    const queried = INDEXES[name] ?? [];
    const indexes = actions.includes("Query") ? queried.map((index) => indexArn(prefix, name, index)) : [];
    list.push({ Effect: "Allow", Action: actions.map((a) => `dynamodb:${a}`), Resource: [tableArn(prefix, name), ...indexes] });
  }
  for (const [name, indexes] of Object.entries(policy.indexQueries ?? {})) {
    list.push({ Effect: "Allow", Action: ["dynamodb:Query"], Resource: indexes.map((index) => indexArn(prefix, name, index)) });
  }
  if (policy.routeQueues) list.push({ Effect: "Allow", Action: policy.routeQueues, Resource: routeQueueArns() });
  if (policy.deadLetterQueues) list.push({ Effect: "Allow", Action: policy.deadLetterQueues, Resource: deadLetterQueueArns() });
  const batchControlArn = { "Fn::GetAtt": ["BatchControlQueue", "Arn"] };
  if (policy.batchControl) list.push({ Effect: "Allow", Action: SQS_SEND, Resource: [batchControlArn] });
  if (policy.batchControlQueue) list.push({ Effect: "Allow", Action: policy.batchControlQueue, Resource: [batchControlArn] });
  if (policy.webhookQueue) list.push({ Effect: "Allow", Action: policy.webhookQueue, Resource: webhookQueueArns() });
  if (policy.connections) {
    // PostToConnection only (POST @connections/{id}), on this stage's connections.
    list.push({
      Effect: "Allow",
      Action: ["execute-api:ManageConnections"],
      Resource: [join("arn:", partition, ":execute-api:", region, ":", account, ":", { Ref: "WebsocketsApi" }, `/${stage}/POST/@connections/*`)],
    });
  }
  if (policy.filesBucket) {
    list.push({ Effect: "Allow", Action: policy.filesBucket, Resource: [join("arn:", partition, `:s3:::${prefix}-files/*`)] });
    list.push({ Effect: "Allow", Action: ["s3:ListBucket"], Resource: [join("arn:", partition, `:s3:::${prefix}-files`)] });
  }
  if (tracing) {
    // X-Ray's PutTraceSegments and PutTelemetryRecords have no resource type: "*" is the only
    // resource AWS takes for them (AWSXRayDaemonWriteAccess grants them the same way).
    list.push({ Effect: "Allow", Action: ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], Resource: ["*"] });
  }
  if (policy.cloudWatchRead) {
    // GetMetricData has no resource type: "*" is the only resource AWS takes for it (its
    // CloudWatchReadOnlyAccess grants it the same way); it reads metrics and changes nothing.
    list.push({ Effect: "Allow", Action: ["cloudwatch:GetMetricData"], Resource: ["*"] });
  }
  if (policy.sagemakerDescribe) {
    list.push({ Effect: "Allow", Action: ["sagemaker:DescribeInferenceComponent"], Resource: sageMakerArns(prefix).inferenceComponents });
  }
  if (policy.sagemaker) {
    // Only the endpoints and inference components infra/sagemaker.cjs deploys, by their deployed
    // names: invoke them, and read the copies each component runs (the batcher's FleetView).
    const arns = sageMakerArns(prefix);
    list.push({
      Effect: "Allow",
      Action: ["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream"],
      Resource: [...arns.endpoints, ...arns.inferenceComponents],
    });
    list.push({ Effect: "Allow", Action: ["sagemaker:DescribeInferenceComponent"], Resource: arns.inferenceComponents });
  }
  return list;
}

/** "wsConnect" -> "WsConnectRole": the logical id serverless.yml names in `role:`. */
const roleId = (fn) => `${fn.charAt(0).toUpperCase()}${fn.slice(1)}Role`;

/**
 * The roles as CloudFormation resources, one per function of POLICIES.
 * @param options.tracing X-Ray on (provider.tracing.lambda): each role may send its segments
 */
function roleResources({ prefix, stage, tracing }) {
  const resources = {};
  for (const [fn, policy] of Object.entries(POLICIES)) {
    resources[roleId(fn)] = {
      Type: "AWS::IAM::Role",
      Properties: {
        AssumeRolePolicyDocument: {
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Principal: { Service: ["lambda.amazonaws.com"] }, Action: ["sts:AssumeRole"] }],
        },
        Policies: [{ PolicyName: `${prefix}-${fn}`, PolicyDocument: { Version: "2012-10-17", Statement: statements({ prefix, stage, fn, tracing }, policy) } }],
      },
    };
  }
  return { Resources: resources };
}

module.exports.roleResources = roleResources;

module.exports.roles = async ({ resolveVariable }) =>
  roleResources({
    prefix: await resolveVariable("self:custom.prefix"),
    stage: await resolveVariable("sls:stage"),
    // true, false, or osls's Active / PassThrough modes
    tracing: Boolean(await resolveVariable("self:provider.tracing.lambda")),
  });
