import middy from "@middy/core";
import { injectLambdaContext } from "@aws-lambda-powertools/logger/middleware";
import type { APIGatewayProxyResultV2, APIGatewayProxyWebsocketEventV2 } from "aws-lambda";
import { handleClientMessage } from "#shared/app/websocket";
import { logger } from "#shared/observability";
import { runtimeDeps } from "#shared/runtime";

const deps = runtimeDeps();

export const handler = middy<APIGatewayProxyWebsocketEventV2, APIGatewayProxyResultV2>()
  .use(injectLambdaContext(logger))
  .handler(async (event) => {
    await handleClientMessage(deps, event.requestContext.connectionId, event.body ?? "");
    return { statusCode: 200 };
  });
