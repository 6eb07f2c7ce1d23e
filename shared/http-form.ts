import type { APIGatewayProxyEventV2 } from "aws-lambda";
import { ValidationError } from "./core/errors.ts";

/**
 * A `multipart/form-data` body (API Gateway hands it over base64-encoded), parsed by Node's own
 * fetch implementation (undici), which the official clients' encoders are tested against.
 */
export async function formBody(event: APIGatewayProxyEventV2): Promise<FormData> {
  const contentType = event.headers["content-type"] ?? "";
  if (!/^multipart\/form-data\s*;/i.test(contentType)) {
    throw new ValidationError(`body: must be multipart/form-data with a file part and a purpose, got content type "${contentType}"`, "body");
  }
  const raw: unknown = event.body;
  const body = typeof raw !== "string" ? Buffer.alloc(0) : event.isBase64Encoded ? Buffer.from(raw, "base64") : Buffer.from(raw, "utf8");
  try {
    return await new Response(body, { headers: { "content-type": contentType } }).formData();
  } catch (error) {
    throw new ValidationError(`body: malformed multipart/form-data (${(error as Error).message})`, "body");
  }
}
