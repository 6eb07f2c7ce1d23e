import type { APIGatewayProxyResultV2, APIGatewayProxyWebsocketEventV2 } from "aws-lambda";
import { handleClientMessage } from "#shared/app/websocket";
import { lambdaFunction } from "#shared/lambda";
import { runtimeDeps } from "#shared/runtime";

const deps = runtimeDeps();

export const handler = lambdaFunction<APIGatewayProxyWebsocketEventV2, APIGatewayProxyResultV2>(async (event) => {
  await handleClientMessage(deps, event.requestContext.connectionId, event.body ?? "");
  return { statusCode: 200 };
});
