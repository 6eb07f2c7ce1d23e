import { createServer } from "node:http";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { LAMBDA_MAX_REQUEST_BYTES } from "#shared/core/files";
import { eventBytes, startFrontDoor } from "#local/front-door";
import { presignedRefusal } from "#local/s3-presigned-expiry";

describe("the event a request becomes", () => {
  it("carries a multipart or binary body base64-encoded, a text body as it is", () => {
    const multipart = eventBytes({ url: "/v1/files", headers: { "content-type": "multipart/form-data; boundary=x" } }, 3_000_000);
    const json = eventBytes({ url: "/v1/files", headers: { "content-type": "application/json" } }, 3_000_000);
    expect(multipart - json).toBe(4_000_000 - 3_000_000 + Buffer.byteLength('"multipart/form-data; boundary=x"') - Buffer.byteLength('"application/json"'));
  });

  it("passes Lambda's 6 MiB with about 4.7 MB of multipart body", () => {
    const at = (bytes: number) => eventBytes({ url: "/v1/files", headers: { "content-type": "multipart/form-data; boundary=x" } }, bytes);
    expect(at(4_600_000)).toBeLessThanOrEqual(LAMBDA_MAX_REQUEST_BYTES);
    expect(at(4_800_000)).toBeGreaterThan(LAMBDA_MAX_REQUEST_BYTES);
  });
});

describe("a function that failed", () => {
  it("answers 500 Internal Server Error as an HTTP API does, where serverless-offline passes Lambda's error object on as a 200; a 200 of the function's own passes", async () => {
    // serverless-offline's answer for a payload 2.0 handler that threw (middy's early timeout here).
    const upstream = createServer((req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      const failed = { errorMessage: "[AbortError]: The operation was aborted.", errorType: "Error", stackTrace: ["TimeoutError: ..."] };
      res.end(JSON.stringify(req.url === "/failed" ? failed : { errorMessage: "a field of the function's own answer", statusCode: 200, id: "job_1" }));
    });
    upstream.listen(0, "127.0.0.1");
    await once(upstream, "listening");
    const door = await startFrontDoor({ host: "127.0.0.1", port: 0, upstreamPort: (upstream.address() as AddressInfo).port });
    try {
      const failed = await fetch(`http://127.0.0.1:${door.port}/failed`, { method: "POST", body: "{}" });
      expect({ status: failed.status, body: await failed.json() }).toEqual({ status: 500, body: { message: "Internal Server Error" } });
      const ok = await fetch(`http://127.0.0.1:${door.port}/ok`);
      expect({ status: ok.status, body: await ok.json() }).toMatchObject({ status: 200, body: { id: "job_1" } });
    } finally {
      await door.close();
      upstream.close();
    }
  });
});

describe("a presigned S3 URL", () => {
  const signed = (date: string, expires: number) => new URLSearchParams({ "X-Amz-Date": date, "X-Amz-Expires": String(expires), "X-Amz-Signature": "ab" });

  it("is taken until X-Amz-Date plus X-Amz-Expires, and refused after in S3's words", () => {
    expect(presignedRefusal(signed("20261207T100000Z", 3600), new Date("2026-12-07T11:00:00Z"))).toBeUndefined();
    const refusal = presignedRefusal(signed("20261207T100000Z", 3600), new Date("2026-12-07T11:00:01Z"));
    expect(refusal?.status).toBe(403);
    expect(refusal?.body).toContain("<Code>AccessDenied</Code><Message>Request has expired</Message><X-Amz-Expires>3600</X-Amz-Expires><Expires>2026-12-07T11:00:00Z</Expires>");
  });

  it("leaves requests that are not presigned alone", () => {
    expect(presignedRefusal(new URLSearchParams({ Action: "ReceiveMessage" }), new Date())).toBeUndefined();
  });
});
