import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from "aws-lambda";
import { authenticate, bearerToken } from "./app/auth.ts";
import type { Principal } from "./core/api-keys.ts";
import { BatchlineError, RateLimitedError, ValidationError } from "./core/errors.ts";
import type { ApiKeyStore } from "./ports.ts";
import { lambdaFunction } from "./lambda.ts";
import { logger } from "./observability.ts";

export type HttpResponse = APIGatewayProxyStructuredResultV2;
export type HttpRequest = { readonly tenant: string; readonly principal: Principal; readonly event: APIGatewayProxyEventV2 };
export type HttpRoute = (request: HttpRequest) => Promise<HttpResponse>;

const STATUS_BY_CODE: Record<string, number> = {
  invalid_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  payload_too_large: 413,
  rate_limited: 429,
  throttled: 503,
  unavailable: 503,
};

export function json(statusCode: number, body: unknown, headers: Record<string, string> = {}): HttpResponse {
  return { statusCode, headers: { "content-type": "application/json", ...headers }, body: JSON.stringify(body) };
}

/** Errors as the API promises them: `{"error": {"code", "message", "field"?}}` with the right status. */
export function errorResponse(error: unknown): HttpResponse {
  if (error instanceof BatchlineError) {
    const status = error instanceof ValidationError ? error.status : (STATUS_BY_CODE[error.code] ?? 500);
    const field = error instanceof ValidationError ? error.field : undefined;
    const retryAfter = error instanceof RateLimitedError ? error.retryAfterSeconds : 1;
    const headers: Record<string, string> = status === 429 || status === 503 ? { "retry-after": String(retryAfter) } : {};
    return json(status, { error: { code: error.code, message: error.message, field } }, headers);
  }
  logger.error("unhandled error", { error: error instanceof Error ? { name: error.name, message: error.message, stack: error.stack } : String(error) });
  return json(500, { error: { code: "internal", message: "internal error" } });
}

/** The request body as text, whatever encoding API Gateway used. */
export function bodyText(event: APIGatewayProxyEventV2): string {
  const body: unknown = event.body;
  if (body === undefined || body === null) return "";
  // serverless-offline parses a JSON body and hands one that parsed to false or 0 over as that
  // value, not as text: give the text back rather than fail on it.
  if (typeof body !== "string") return JSON.stringify(body) ?? "";
  return event.isBase64Encoded ? Buffer.from(body, "base64").toString("utf8") : body;
}

/** The request body parsed as JSON, or a 400 that says why not. */
export function jsonBody(event: APIGatewayProxyEventV2): unknown {
  const text = bodyText(event);
  if (text.trim() === "") throw new ValidationError("body: is required (a JSON object)", "body");
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new ValidationError(`body: malformed JSON (${(error as Error).message})`, "body");
  }
}

export function pathParameter(event: APIGatewayProxyEventV2, name: string): string {
  const value = event.pathParameters?.[name];
  if (!value) throw new ValidationError(`path parameter ${name} is required`, name);
  return value;
}

/**
 * An HTTP API function: authenticates the API key, dispatches on the route key
 * ("POST /v1/jobs"), and turns every error into the API's error body.
 */
export function httpFunction(apiKeys: () => ApiKeyStore, routes: Record<string, HttpRoute>) {
  return lambdaFunction<APIGatewayProxyEventV2, HttpResponse>(async (event) => {
    try {
      const route = routes[event.routeKey];
      if (!route) return json(404, { error: { code: "not_found", message: `no route ${event.routeKey}` } });
      const principal = await authenticate(apiKeys(), bearerToken(event.headers.authorization));
      return await route({ tenant: principal.tenant, principal, event });
    } catch (error) {
      return errorResponse(error);
    }
  });
}
