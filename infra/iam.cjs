// One IAM role per function, each allowed only what its code calls (least privilege), resolved by
// osls through ${file(infra/iam.cjs):roles}; functions pick theirs with `role:` in serverless.yml.
// The table below is the whole policy: a function, the tables and actions it uses, and the rest.
const { routeQueueArns, deadLetterQueueArns } = require("./serverless-routes.cjs");

const join = (...parts) => ({ "Fn::Join": ["", parts] });
const region = { Ref: "AWS::Region" };
const account = { Ref: "AWS::AccountId" };

const table = (prefix, name) => join("arn:aws:dynamodb:", region, ":", account, `:table/${prefix}-${name}`);
const tableIndexes = (prefix, name) => join("arn:aws:dynamodb:", region, ":", account, `:table/${prefix}-${name}/index/*`);

const READ_KEY = { "api-keys": ["GetItem"] };
/** Submitting charges the tenant's quotas; every terminal transition gives the job's slot back. */
const QUOTAS = { tenants: ["GetItem"], usage: ["UpdateItem"] };
const RELEASE = { usage: ["UpdateItem"] };
const NOTIFY = { subscriptions: ["Query", "BatchWriteItem"] };
const SQS_SEND = ["sqs:SendMessage", "sqs:GetQueueUrl"];
const SQS_CONSUME = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"];

/** function -> { tables: { table: [DynamoDB actions] }, routeQueues?, deadLetterQueues?, connections?, sagemaker? } */
const POLICIES = {
  models: { tables: READ_KEY },
  jobs: {
    tables: { ...READ_KEY, ...NOTIFY, ...QUOTAS, jobs: ["PutItem", "GetItem", "UpdateItem", "Query"], "idempotency-keys": ["PutItem", "GetItem", "DeleteItem"], batches: ["GetItem"] },
    routeQueues: SQS_SEND,
    connections: true,
  },
  batches: {
    tables: { ...READ_KEY, ...NOTIFY, ...QUOTAS, jobs: ["BatchWriteItem", "GetItem", "UpdateItem", "Query"], batches: ["PutItem", "GetItem", "Query"] },
    routeQueues: SQS_SEND,
    connections: true,
  },
  routeSettings: { tables: { ...READ_KEY, "route-settings": ["GetItem", "PutItem"] } },
  wsTickets: { tables: { ...READ_KEY, "ws-tickets": ["PutItem"] } },
  wsConnect: { tables: { ...READ_KEY, "ws-tickets": ["DeleteItem"], connections: ["PutItem"] } },
  wsDisconnect: { tables: { connections: ["DeleteItem"], subscriptions: ["Query", "BatchWriteItem"] } },
  wsMessage: {
    tables: {
      connections: ["GetItem"],
      subscriptions: ["PutItem", "Query", "BatchWriteItem"],
      jobs: ["PutItem", "GetItem", "UpdateItem", "Query"],
      "idempotency-keys": ["PutItem", "GetItem", "DeleteItem"],
      batches: ["GetItem"],
      ...QUOTAS,
    },
    routeQueues: SQS_SEND,
    connections: true,
  },
  batcher: {
    tables: { ...NOTIFY, ...RELEASE, jobs: ["GetItem", "UpdateItem", "Query"], batches: ["GetItem"], "route-settings": ["GetItem"], capacity: ["Query", "PutItem", "DeleteItem"] },
    routeQueues: [...SQS_CONSUME, ...SQS_SEND],
    connections: true,
    sagemaker: true,
  },
  deadLetter: {
    tables: { ...NOTIFY, ...RELEASE, jobs: ["GetItem", "UpdateItem", "Query"], batches: ["GetItem"] },
    deadLetterQueues: SQS_CONSUME,
    connections: true,
  },
};

function statements(prefix, policy) {
  const list = [
    { Effect: "Allow", Action: ["logs:CreateLogStream", "logs:PutLogEvents"], Resource: [join("arn:aws:logs:", region, ":", account, `:log-group:/aws/lambda/${prefix}-*:*`)] },
  ];
  for (const [name, actions] of Object.entries(policy.tables ?? {})) {
    list.push({ Effect: "Allow", Action: actions.map((a) => `dynamodb:${a}`), Resource: [table(prefix, name), tableIndexes(prefix, name)] });
  }
  if (policy.routeQueues) list.push({ Effect: "Allow", Action: policy.routeQueues, Resource: routeQueueArns() });
  if (policy.deadLetterQueues) list.push({ Effect: "Allow", Action: policy.deadLetterQueues, Resource: deadLetterQueueArns() });
  if (policy.connections) {
    list.push({ Effect: "Allow", Action: ["execute-api:ManageConnections"], Resource: [join("arn:aws:execute-api:", region, ":", account, ":", { Ref: "WebsocketsApi" }, "/*/POST/@connections/*")] });
  }
  if (policy.sagemaker) {
    list.push({
      Effect: "Allow",
      Action: ["sagemaker:InvokeEndpoint", "sagemaker:InvokeEndpointWithResponseStream"],
      Resource: [join("arn:aws:sagemaker:", region, ":", account, ":endpoint/*"), join("arn:aws:sagemaker:", region, ":", account, ":inference-component/*")],
    });
  }
  return list;
}

/** "wsConnect" -> "WsConnectRole": the logical id serverless.yml names in `role:`. */
const roleId = (fn) => `${fn.charAt(0).toUpperCase()}${fn.slice(1)}Role`;

module.exports.roles = async ({ resolveVariable }) => {
  const prefix = await resolveVariable("self:custom.prefix");
  const resources = {};
  for (const [fn, policy] of Object.entries(POLICIES)) {
    resources[roleId(fn)] = {
      Type: "AWS::IAM::Role",
      Properties: {
        AssumeRolePolicyDocument: {
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Principal: { Service: ["lambda.amazonaws.com"] }, Action: ["sts:AssumeRole"] }],
        },
        Policies: [{ PolicyName: `${prefix}-${fn}`, PolicyDocument: { Version: "2012-10-17", Statement: statements(prefix, policy) } }],
      },
    };
  }
  return { Resources: resources };
};
