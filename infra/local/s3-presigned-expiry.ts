/**
 * S3 refuses a presigned URL past its X-Amz-Expires; fauxqs checks no signature, so without this
 * an expired upload_url would work locally and fail in AWS. Answered in S3's words (403
 * AccessDenied, "Request has expired").
 */
export type PresignedRefusal = { readonly status: 403; readonly contentType: "application/xml"; readonly body: string };

/** X-Amz-Date's basic format: 20261207T104511Z. */
function parseAmzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  return m ? new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]))) : undefined;
}

const iso = (d: Date) => d.toISOString().replace(/\.\d{3}Z$/, "Z");

/** The refusal S3 would answer a presigned request (query-string SigV4) at `now`; undefined when S3 would take it. */
export function presignedRefusal(query: URLSearchParams, now: Date): PresignedRefusal | undefined {
  const date = query.get("X-Amz-Date");
  const expires = query.get("X-Amz-Expires");
  if (query.get("X-Amz-Signature") === null || date === null || expires === null) return undefined;
  const signedAt = parseAmzDate(date);
  if (signedAt === undefined) return undefined;
  const expiresAt = new Date(signedAt.getTime() + Number(expires) * 1000);
  if (now.getTime() <= expiresAt.getTime()) return undefined;
  const body =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>AccessDenied</Code><Message>Request has expired</Message><X-Amz-Expires>${expires}</X-Amz-Expires>` +
    `<Expires>${iso(expiresAt)}</Expires><ServerTime>${iso(now)}</ServerTime></Error>`;
  return { status: 403, contentType: "application/xml", body };
}
