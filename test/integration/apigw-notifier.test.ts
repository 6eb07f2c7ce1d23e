import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { ApiGatewayManagementApiClient } from "@aws-sdk/client-apigatewaymanagementapi";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiGatewayNotifier } from "#shared/aws/apigw-notifier";
import { ConnectionGoneError, RetryableError } from "#shared/core/errors";
import { jobEvent, type ServerEvent } from "#shared/core/events";
import { localClientConfig, uniqueSuffix } from "../helpers/local-aws.ts";

type Post = { connectionId: string; contentType: string | undefined; body: string };

/**
 * A stand-in for API Gateway's management API: POST /@connections/{id}. Live ids get 200; gone
 * ids a 410 either bare (serverless-offline) or with x-amzn-errortype (AWS); broken ids a 500.
 */
function startGateway(ids: { live: Set<string>; goneBare: Set<string>; goneTyped: Set<string>; broken: Set<string> }) {
  const posts: Post[] = [];
  const server: Server = createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += String(chunk);
    const match = /^\/@connections\/([^/]+)$/.exec(req.url ?? "");
    const connectionId = match?.[1] === undefined ? undefined : decodeURIComponent(match[1]);
    if (req.method !== "POST" || connectionId === undefined) return void res.writeHead(404).end();
    if (ids.live.has(connectionId)) {
      posts.push({ connectionId, contentType: req.headers["content-type"], body });
      return void res.writeHead(200).end();
    }
    if (ids.goneTyped.has(connectionId)) {
      return void res.writeHead(410, { "content-type": "application/json", "x-amzn-errortype": "GoneException" }).end("{}");
    }
    if (ids.broken.has(connectionId)) {
      return void res.writeHead(500, { "content-type": "application/json" }).end(JSON.stringify({ message: "Internal server error" }));
    }
    // serverless-offline: a bare 410, no body, no error type.
    return void res.writeHead(410).end();
  });
  return { server, posts };
}

const event: ServerEvent = jobEvent({
  job_id: "job_1",
  status: "SUCCEEDED",
  version: 3,
  model: "llama-2-7b",
  result: { text: "Queues wait; GPUs hum. ✨", prompt_tokens: 9, completion_tokens: 7, finish_reason: "length" },
  metadata: { team: "search" },
  timings: { submitted_at: "2026-11-27T12:00:00.000Z", finished_at: "2026-11-27T12:00:07.000Z" },
  window: { window_id: "win_1", window_size: 12 },
});

describe("ApiGatewayNotifier against a local /@connections endpoint", () => {
  // API Gateway ids end in "=": the SDK must URL-encode them in the path.
  const live = `Lx${uniqueSuffix()}=`;
  const goneBare = `Gb${uniqueSuffix()}=`;
  const goneTyped = `Gt${uniqueSuffix()}=`;
  const broken = `Br${uniqueSuffix()}=`;
  const gateway = startGateway({ live: new Set([live]), goneBare: new Set([goneBare]), goneTyped: new Set([goneTyped]), broken: new Set([broken]) });
  let client: ApiGatewayManagementApiClient;
  let notifier: ApiGatewayNotifier;

  beforeAll(async () => {
    gateway.server.listen(0, "127.0.0.1");
    await once(gateway.server, "listening");
    const { port } = gateway.server.address() as AddressInfo;
    client = new ApiGatewayManagementApiClient(localClientConfig(`http://127.0.0.1:${port}`));
    notifier = new ApiGatewayNotifier({ client });
  });
  afterAll(async () => {
    client.destroy();
    gateway.server.closeAllConnections();
    await new Promise<void>((resolve, reject) => gateway.server.close((error) => (error ? reject(error) : resolve())));
  });

  it("delivers the event to a live connection as its JSON", async () => {
    // Act
    await notifier.post(live, event);

    // Assess
    const delivered = gateway.posts.filter((p) => p.connectionId === live);
    expect(delivered).toHaveLength(1);
    expect(JSON.parse(delivered[0]?.body ?? "")).toEqual(JSON.parse(JSON.stringify(event)));
  });

  it("reports a bare 410 (serverless-offline) as ConnectionGoneError", async () => {
    // Act
    const posted = notifier.post(goneBare, event);

    // Assess
    await expect(posted).rejects.toBeInstanceOf(ConnectionGoneError);
    await expect(posted).rejects.toMatchObject({ connectionId: goneBare, code: "connection_gone" });
  });

  it("reports a 410 GoneException (AWS) as ConnectionGoneError", async () => {
    // Act
    const posted = notifier.post(goneTyped, event);

    // Assess
    await expect(posted).rejects.toBeInstanceOf(ConnectionGoneError);
    await expect(posted).rejects.toMatchObject({ connectionId: goneTyped });
  });

  it("reports a 500 as a RetryableError", async () => {
    // Act
    const posted = notifier.post(broken, event);

    // Assess
    await expect(posted).rejects.toBeInstanceOf(RetryableError);
    await expect(posted).rejects.toMatchObject({ code: "unavailable", retryable: true });
  });

  it("reports an unreachable gateway as a RetryableError", async () => {
    // Prepare: a port that was free a moment ago and has nothing listening now
    const probe = createServer();
    probe.listen(0, "127.0.0.1");
    await once(probe, "listening");
    const { port } = probe.address() as AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const offline = new ApiGatewayManagementApiClient({ ...localClientConfig(`http://127.0.0.1:${port}`), maxAttempts: 1 });

    // Act
    const posted = new ApiGatewayNotifier({ client: offline }).post(live, event);

    // Assess
    await expect(posted).rejects.toBeInstanceOf(RetryableError);
    offline.destroy();
  });
});
