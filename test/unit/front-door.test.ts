import { describe, expect, it } from "vitest";
import { LAMBDA_MAX_REQUEST_BYTES } from "#shared/core/files";
import { eventBytes } from "#local/front-door";
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
