import type { APIGatewayProxyResultV2, APIGatewayProxyWebsocketEventV2 } from "aws-lambda";
import { connect } from "#shared/app/websocket";
import { UnauthorizedError } from "#shared/core/errors";
import { lambdaFunction } from "#shared/lambda";
import { runtimeDeps } from "#shared/runtime";

const deps = runtimeDeps();

/** $connect carries the query string, which the v2 WebSocket event type leaves out. */
type ConnectEvent = APIGatewayProxyWebsocketEventV2 & { queryStringParameters?: Record<string, string | undefined> | null };

export const handler = lambdaFunction<ConnectEvent, APIGatewayProxyResultV2>(async (event) => {
  try {
    const query = event.queryStringParameters ?? {};
    await connect(deps, event.requestContext.connectionId, { ticket: query.ticket, token: query.token });
    return { statusCode: 200 };
  } catch (error) {
    if (error instanceof UnauthorizedError) return { statusCode: 401, body: error.message };
    throw error;
  }
});
