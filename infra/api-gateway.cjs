// API Gateway settings osls has no option for, resolved by osls through
// ${file(infra/api-gateway.cjs):resources} from serverless.yml's custom.api:
// - stage-wide throttling of the HTTP API and the WebSocket API (each stage's
//   DefaultRouteSettings, through resources.extensions of the stages osls generates);
// - the account's API Gateway CloudWatch Logs role, which WebSocket logging needs;
// - the outputs of the WebSocket API that osls does not give.
// CommonJS because osls require()s it.

const HTTP_STAGE = "HttpApiStage";
const WEBSOCKET_STAGE = "WebsocketsDeploymentStage";
const ACCOUNT = "ApiGatewayAccount";
const CLOUDWATCH_ROLE = "ApiGatewayCloudWatchRole";

// Fn::Join rather than Fn::Sub, whose ${...} would meet osls's own variable syntax.
const join = (...parts) => ({ "Fn::Join": ["", parts] });

/** A stage setting from custom.api: a number (YAML) or the text of one (--param). */
function positiveNumber(value, name, { integer }) {
  const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
  if (typeof n !== "number" || !Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new Error(`custom.api.${name} must be a positive ${integer ? "integer" : "number"}, got ${JSON.stringify(value)}`);
  }
  return n;
}

/** AWS::ApiGatewayV2::Stage RouteSettings' throttling, from `{ throttlingBurstLimit, throttlingRateLimit }`. */
function throttling(settings, name) {
  return {
    ThrottlingBurstLimit: positiveNumber(settings?.throttlingBurstLimit, `${name}.throttlingBurstLimit`, { integer: true }),
    ThrottlingRateLimit: positiveNumber(settings?.throttlingRateLimit, `${name}.throttlingRateLimit`, { integer: false }),
  };
}

/**
 * The resources, stage extensions and outputs for `api` (serverless.yml's custom.api),
 * `websocketLogs` (provider.logs.websocket: its execution-log settings live in the same
 * DefaultRouteSettings, which an extension replaces whole) and the stage's name.
 */
function apiGatewayResources({ api, websocketLogs = {}, stage }) {
  if (!["stack", "external"].includes(api?.cloudWatchRole)) {
    throw new Error(`custom.api.cloudWatchRole must be "stack" or "external", got ${JSON.stringify(api?.cloudWatchRole)}`);
  }
  const executionLogging = websocketLogs.executionLogging ?? true;
  const resources = {};
  const websocketStage = {
    Properties: {
      DefaultRouteSettings: {
        DataTraceEnabled: websocketLogs.fullExecutionData ?? true,
        LoggingLevel: executionLogging ? (websocketLogs.level ?? "INFO") : "OFF",
        ...throttling(api.websocket, "websocket"),
      },
    },
  };
  if (api.cloudWatchRole === "stack") {
    // Account-wide (one per region): every REST and WebSocket API of the account logs through
    // it, so it may write to any log group of the account and region. Kept when the stack goes,
    // as the account's setting keeps pointing at it.
    resources[CLOUDWATCH_ROLE] = {
      Type: "AWS::IAM::Role",
      DeletionPolicy: "Retain",
      UpdateReplacePolicy: "Retain",
      Properties: {
        AssumeRolePolicyDocument: {
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Principal: { Service: ["apigateway.amazonaws.com"] }, Action: ["sts:AssumeRole"] }],
        },
        Policies: [
          {
            PolicyName: "api-gateway-cloudwatch-logs",
            PolicyDocument: {
              Version: "2012-10-17",
              Statement: [
                {
                  Effect: "Allow",
                  // The actions of AWS's AmazonAPIGatewayPushToCloudWatchLogs, on this account's logs only.
                  Action: [
                    "logs:CreateLogGroup",
                    "logs:CreateLogStream",
                    "logs:DescribeLogGroups",
                    "logs:DescribeLogStreams",
                    "logs:PutLogEvents",
                    "logs:GetLogEvents",
                    "logs:FilterLogEvents",
                  ],
                  Resource: [join("arn:", { Ref: "AWS::Partition" }, ":logs:", { Ref: "AWS::Region" }, ":", { Ref: "AWS::AccountId" }, ":log-group:*")],
                },
              ],
            },
          },
        ],
      },
    };
    resources[ACCOUNT] = {
      Type: "AWS::ApiGateway::Account",
      DeletionPolicy: "Retain",
      UpdateReplacePolicy: "Retain",
      Properties: { CloudWatchRoleArn: { "Fn::GetAtt": [CLOUDWATCH_ROLE, "Arn"] } },
    };
    // The stage's logging is refused until the account has the role.
    websocketStage.DependsOn = [ACCOUNT];
  }
  return {
    Resources: resources,
    extensions: {
      [HTTP_STAGE]: { Properties: { DefaultRouteSettings: { DetailedMetricsEnabled: false, ...throttling(api.http, "http") } } },
      [WEBSOCKET_STAGE]: websocketStage,
    },
    Outputs: {
      WebsocketApiId: { Description: "Id of the WebSocket API", Value: { Ref: "WebsocketsApi" } },
      WebsocketManagementEndpoint: {
        Description: "The WebSocket API's connections endpoint (PostToConnection; BATCHLINE_WS_ENDPOINT)",
        Value: join("https://", { Ref: "WebsocketsApi" }, ".execute-api.", { Ref: "AWS::Region" }, ".", { Ref: "AWS::URLSuffix" }, "/", stage),
      },
    },
  };
}

module.exports.apiGatewayResources = apiGatewayResources;

module.exports.resources = async ({ resolveVariable }) =>
  apiGatewayResources({
    api: await resolveVariable("self:custom.api"),
    websocketLogs: (await resolveVariable("self:provider.logs.websocket")) ?? {},
    stage: await resolveVariable("sls:stage"),
  });
