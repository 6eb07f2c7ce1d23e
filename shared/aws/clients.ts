import { ApiGatewayManagementApiClient } from "@aws-sdk/client-apigatewaymanagementapi";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { SageMakerClient } from "@aws-sdk/client-sagemaker";
import { SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import { S3Client } from "@aws-sdk/client-s3";
import { SQSClient } from "@aws-sdk/client-sqs";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";

/**
 * SDK clients, built once per cold start. Endpoints come from the SDK's own AWS_ENDPOINT_URL_*
 * variables, so the same code talks to AWS or to the embedded stack.
 */
export type Clients = {
  readonly dynamodb: DynamoDBDocumentClient;
  readonly sqs: SQSClient;
  readonly sagemaker: SageMakerRuntimeClient;
  /** SageMaker's control plane (AWS_ENDPOINT_URL_SAGEMAKER): the components' copy counts. */
  readonly sagemakerControl: SageMakerClient;
  readonly connections: ApiGatewayManagementApiClient;
  readonly s3: S3Client;
};

/**
 * Path-style (`<endpoint>/<bucket>/<key>`) where an endpoint is set: an emulator on 127.0.0.1
 * has no DNS for `<bucket>.127.0.0.1`. AWS keeps its virtual-hosted URLs.
 */
export function s3PathStyle(env: Readonly<Record<string, string | undefined>>): boolean {
  return Boolean(env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL);
}

/**
 * The batcher's SageMaker runtime client (batchline calibrate times calls through the same): the
 * batcher decides about retries itself (visibility timeout, DLQ), so one attempt per call; a
 * rolling engine's GPU batch is one call per job, all in flight together, so that many sockets.
 */
export function sageMakerRuntimeClient(config: { readonly region?: string | undefined } = {}): SageMakerRuntimeClient {
  return new SageMakerRuntimeClient({
    ...(config.region !== undefined && { region: config.region }),
    maxAttempts: 1,
    requestHandler: { httpAgent: { keepAlive: true, maxSockets: 1024 }, httpsAgent: { keepAlive: true, maxSockets: 1024 } },
  });
}

export function createClients(options: { wsEndpoint: string }): Clients {
  return {
    dynamodb: DynamoDBDocumentClient.from(new DynamoDBClient({}), { marshallOptions: { removeUndefinedValues: true } }),
    // Queue URLs from emulators carry hosts that do not resolve; always use the configured endpoint.
    sqs: new SQSClient({ useQueueUrlAsEndpoint: false }),
    sagemaker: sageMakerRuntimeClient(),
    sagemakerControl: new SageMakerClient({}),
    connections: new ApiGatewayManagementApiClient({ endpoint: options.wsEndpoint }),
    s3: new S3Client({ forcePathStyle: s3PathStyle(process.env) }),
  };
}
