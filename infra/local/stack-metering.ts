import { connectionsExchange, dynamoDbExchange, type MeteringProxy, startMeteringProxy } from "./metering-proxy.ts";
import { offlineInvocationReader, type RequestMeter } from "./request-meter.ts";
import { HOST } from "./stack-options.ts";

/**
 * Where a metered stack counts what its functions ask of AWS (StackOptions.meter): proxies in front
 * of the functions' DynamoDB and `@connections` endpoints, the HTTP API's front door, fauxqs's own
 * hook (stack-parts.ts) and serverless-offline's line for each invocation.
 */

/** The functions' DynamoDB and `@connections` endpoints, behind metering proxies (added to `proxies` as they start). */
export async function meteredEndpoints(
  meter: RequestMeter,
  endpoints: { readonly dynamodb: string; readonly connections: string | undefined },
  proxies: MeteringProxy[],
): Promise<{ dynamodb: string; connections: string | undefined }> {
  const dynamodb = await startMeteringProxy({ target: endpoints.dynamodb, host: HOST, exchange: dynamoDbExchange(meter) });
  proxies.push(dynamodb);
  if (endpoints.connections === undefined) return { dynamodb: dynamodb.url, connections: undefined };
  const connections = await startMeteringProxy({ target: endpoints.connections, host: HOST, exchange: connectionsExchange(meter) });
  proxies.push(connections);
  return { dynamodb: dynamodb.url, connections: connections.url };
}

/** The HTTP API's requests by route, its ids left out (`GET /v1/jobs/{id}` → `GET /v1/jobs`). */
export function httpApiAction(method: string, url: string): string {
  const segments = new URL(url, "http://local").pathname.split("/").filter(Boolean).slice(0, 2);
  return `${method} /${segments.join("/")}`;
}

/**
 * serverless-offline's output, read for its invocations: each one metered with its billed duration
 * and its function's memory (`memoryMb`, by deployed name, known once the template is read).
 */
export function meteredOfflineOutput(meter: RequestMeter, prefix: string, memoryMb: () => Readonly<Record<string, number>>, forward: ((chunk: string) => void) | undefined): (chunk: string) => void {
  const read = offlineInvocationReader((functionKey, billedMs) => meter.invocation(functionKey, billedMs, memoryMb()[`${prefix}-${functionKey}`] ?? 128));
  return (chunk) => {
    read(chunk);
    forward?.(chunk);
  };
}
