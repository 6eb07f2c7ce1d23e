import { GoneException, PayloadTooLargeException } from "@aws-sdk/client-apigatewaymanagementapi";
import {
  ConditionalCheckFailedException, ProvisionedThroughputExceededException, ResourceNotFoundException, ThrottlingException,
} from "@aws-sdk/client-dynamodb";
import {
  ModelError, ModelNotReadyException, ServiceUnavailable, ValidationError as SageMakerValidationError,
} from "@aws-sdk/client-sagemaker-runtime";
import { describe, expect, it } from "vitest";
import { translateConnectionError, translateSageMakerError, translateSdkError } from "#shared/aws/errors";
import { ConflictError, ConnectionGoneError, ModelRejectedError, ModelWarmingError, NotFoundError, RetryableError } from "#shared/core/errors";

const meta = (httpStatusCode: number) => ({ $metadata: { httpStatusCode } });

/** An error the way the SDK throws one it has no class for: a name and the HTTP status. */
function sdkError(name: string, status: number | undefined, message = `${name} happened`): Error {
  return Object.assign(new Error(message), { name, $metadata: status === undefined ? {} : { httpStatusCode: status } });
}

const modelError = (OriginalStatusCode: number, OriginalMessage = "the model said no") =>
  new ModelError({ ...meta(424), message: `Received error (${OriginalStatusCode}) from primary`, OriginalStatusCode, OriginalMessage });

type Expected = { type: abstract new (...args: never[]) => Error; code?: string } | "unchanged";

function assess(translated: unknown, original: unknown, expected: Expected): void {
  if (expected === "unchanged") {
    expect(translated).toBe(original);
    return;
  }
  expect(translated).toBeInstanceOf(expected.type);
  if (expected.code !== undefined) expect(translated).toMatchObject({ code: expected.code });
  expect((translated as Error).cause).toBe(original);
}

describe("translateSdkError", () => {
  const cases: [string, unknown, Expected][] = [
    ["ConditionalCheckFailedException", new ConditionalCheckFailedException({ ...meta(400), message: "The conditional request failed" }), { type: ConflictError, code: "conflict" }],
    ["ThrottlingException", new ThrottlingException({ ...meta(400), message: "Rate exceeded" }), { type: RetryableError, code: "throttled" }],
    ["ProvisionedThroughputExceededException", new ProvisionedThroughputExceededException({ ...meta(400), message: "slow down" }), { type: RetryableError, code: "throttled" }],
    ["a 429 of any name", sdkError("TooBusy", 429), { type: RetryableError, code: "throttled" }],
    ["an error the SDK marks as throttling", Object.assign(sdkError("SlowDown", 400), { $retryable: { throttling: true } }), { type: RetryableError, code: "throttled" }],
    ["a 503", sdkError("ServiceUnavailable", 503), { type: RetryableError, code: "unavailable" }],
    ["a 500 without a name the SDK knows", sdkError("Unknown", 500), { type: RetryableError, code: "unavailable" }],
    ["a network error with no HTTP status", sdkError("TimeoutError", undefined), { type: RetryableError, code: "unavailable" }],
    ["a ResourceNotFoundException (400)", new ResourceNotFoundException({ ...meta(400), message: "Requested resource not found" }), "unchanged"],
    ["a ValidationException (400)", sdkError("ValidationException", 400), "unchanged"],
    ["an AccessDeniedException (403)", sdkError("AccessDeniedException", 403), "unchanged"],
  ];

  it.each(cases)("%s", (_, error, expected) => {
    // Act
    const translated = translateSdkError(error, "test call");

    // Assess
    assess(translated, error, expected);
  });

  it("passes a BatchlineError through as it is", () => {
    const error = new NotFoundError("no such job");
    expect(translateSdkError(error, "test call")).toBe(error);
  });

  it("names what failed in the message", () => {
    const translated = translateSdkError(sdkError("ServiceUnavailable", 503), "get job job_1");
    expect((translated as Error).message).toContain("get job job_1");
  });
});

describe("translateSageMakerError", () => {
  const cases: [string, unknown, Expected][] = [
    ["ModelError with OriginalStatusCode 400", modelError(400), { type: ModelRejectedError, code: "model_error" }],
    ["ModelError with OriginalStatusCode 422", modelError(422), { type: ModelRejectedError, code: "model_error" }],
    ["ModelError with OriginalStatusCode 500", modelError(500), { type: RetryableError, code: "unavailable" }],
    ["ModelError with OriginalStatusCode 429 (the container's queue is full)", modelError(429), { type: RetryableError, code: "throttled" }],
    ["ModelError with OriginalStatusCode 0 (invocation timeout)", modelError(0), { type: RetryableError, code: "unavailable" }],
    ["ModelError with no OriginalStatusCode", new ModelError({ ...meta(424), message: "model failed" }), { type: RetryableError, code: "unavailable" }],
    ["a 413", sdkError("Unknown", 413, "HTTP content length exceeded 6291456 bytes."), { type: ModelRejectedError, code: "model_error" }],
    ["a 413 ValidationError (oversize body)", new SageMakerValidationError({ ...meta(413), message: "Request has oversize body." }), { type: ModelRejectedError, code: "model_error" }],
    ["ValidationError: unknown endpoint or component", new SageMakerValidationError({ ...meta(400), message: "Inference component x not found" }), { type: RetryableError, code: "unavailable" }],
    ["ModelNotReadyException (429): a component warming or scaled to zero", new ModelNotReadyException({ ...meta(429), message: "no copies" }), { type: ModelWarmingError, code: "warming" }],
    [
      "ValidationError (400) 'has no capacity': a component at zero copies or warming up",
      new SageMakerValidationError({
        ...meta(400),
        message: "Inference Component has no capacity to process this request. ApplicationAutoScaling may be in-progress (if configured) or try to increase the capacity by invoking UpdateInferenceComponentRuntimeConfig API.",
      }),
      { type: ModelWarmingError, code: "warming" },
    ],
    ["ThrottlingException (400)", sdkError("ThrottlingException", 400), { type: RetryableError, code: "throttled" }],
    ["ServiceUnavailable (503)", new ServiceUnavailable({ ...meta(503), message: "try later" }), { type: RetryableError, code: "unavailable" }],
    ["another 4xx", sdkError("AccessDeniedException", 403), "unchanged"],
  ];

  it.each(cases)("%s", (_, error, expected) => {
    // Act
    const translated = translateSageMakerError(error, "batchline-h100");

    // Assess
    assess(translated, error, expected);
  });

  it("gives the model's own message for a rejected request", () => {
    const translated = translateSageMakerError(modelError(400, "input 0 has 5000 tokens"), "batchline-h100");
    expect((translated as Error).message).toContain("input 0 has 5000 tokens");
  });
});

describe("translateConnectionError", () => {
  const cases: [string, unknown, Expected][] = [
    ["GoneException (AWS)", new GoneException({ ...meta(410), message: "gone" }), { type: ConnectionGoneError, code: "connection_gone" }],
    ["a bare 410 (serverless-offline)", sdkError("Unknown", 410), { type: ConnectionGoneError, code: "connection_gone" }],
    ["a 500", sdkError("InternalServerErrorException", 500), { type: RetryableError, code: "unavailable" }],
    ["a 429", sdkError("LimitExceededException", 429), { type: RetryableError, code: "throttled" }],
    ["PayloadTooLargeException (413)", new PayloadTooLargeException({ ...meta(413), message: "too large" }), "unchanged"],
  ];

  it.each(cases)("%s", (_, error, expected) => {
    // Act
    const translated = translateConnectionError(error, "conn=");

    // Assess
    if (expected !== "unchanged" && expected.type === ConnectionGoneError) {
      expect(translated).toBeInstanceOf(ConnectionGoneError);
      expect(translated).toMatchObject({ connectionId: "conn=", code: "connection_gone" });
      return;
    }
    assess(translated, error, expected);
  });
});
