import type { IncomingMessage } from "node:http";
import type { Reply } from "./errors.ts";
import type { Fleet } from "./fleet.ts";

/**
 * The little of SageMaker's control plane (the `sagemaker` API, not the runtime) that the
 * functions call, on the emulator's port: DescribeInferenceComponent, for the batcher to size its
 * work on the copies running now (AWS_ENDPOINT_URL_SAGEMAKER). The SDK speaks awsJson1.1: POST /
 * with the operation in X-Amz-Target, errors named by x-amzn-errortype.
 */
const region = "us-east-1";
const account = "000000000000";
const targetPrefix = "SageMaker.";

/** Whether the request is a control-plane call (the runtime's paths are /endpoints/...). */
export function isControlPlaneCall(req: IncomingMessage, path: string): boolean {
  const target = req.headers["x-amz-target"];
  return req.method === "POST" && path === "/" && typeof target === "string" && target.startsWith(targetPrefix);
}

/** Answers a control-plane call; `routesName` maps a deployed component name to its routes.yml name. */
export async function controlPlane(req: IncomingMessage, fleet: Fleet, createdAtEpochSeconds: number, routesName: (name: string) => string): Promise<Reply> {
  const operation = String(req.headers["x-amz-target"]).slice(targetPrefix.length);
  const input = await jsonBody(req);
  if (operation !== "DescribeInferenceComponent") return awsJsonError("UnknownOperationException", `The emulator does not implement SageMaker.${operation}.`);
  const name = typeof input.InferenceComponentName === "string" ? input.InferenceComponentName : "";
  const engine = fleet.engine(routesName(name));
  if (!engine) return awsJsonError("ValidationException", `Could not find inference component "${inferenceComponentArn(name)}".`);
  const { component } = engine;
  // Named as the caller named it: the deployed name in AWS, the routes.yml name when called so.
  return {
    status: 200,
    headers: { "content-type": "application/x-amz-json-1.1" },
    body: JSON.stringify({
      InferenceComponentName: name,
      InferenceComponentArn: inferenceComponentArn(name),
      EndpointName: component.endpointName,
      EndpointArn: `arn:aws:sagemaker:${region}:${account}:endpoint/${component.endpointName}`,
      VariantName: "AllTraffic",
      Specification: { ComputeResourceRequirements: { NumberOfAcceleratorDevicesRequired: component.accelerators_per_copy } },
      // Current: the copies taking requests now; desired: what scaling last asked for, warming copies included.
      RuntimeConfig: { DesiredCopyCount: engine.copyCount(), CurrentCopyCount: engine.servingCount() },
      CreationTime: createdAtEpochSeconds,
      InferenceComponentStatus: "InService",
    }),
  };
}

const inferenceComponentArn = (name: string) => `arn:aws:sagemaker:${region}:${account}:inference-component/${name}`;

function awsJsonError(type: string, message: string): Reply {
  return { status: 400, headers: { "content-type": "application/x-amz-json-1.1", "x-amzn-errortype": type }, body: JSON.stringify({ __type: type, message }) };
}

async function jsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  let text = "";
  for await (const chunk of req as AsyncIterable<Buffer>) text += chunk.toString("utf8");
  try {
    const value: unknown = JSON.parse(text || "{}");
    return typeof value === "object" && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
