import { describe, expect, it } from "vitest";
import { batchOutcome, toSqsRecord } from "#local/lambda-sqs-event";

describe("toSqsRecord", () => {
  it("builds the record Lambda sends, message attributes in its camelCase shape", () => {
    const record = toSqsRecord(
      {
        MessageId: "m1",
        ReceiptHandle: "rh",
        Body: "{}",
        MD5OfBody: "99914b932bd37a50b983c5e7c90ae93b",
        Attributes: { ApproximateReceiveCount: "2", SentTimestamp: "100", SenderId: "000000000000", ApproximateFirstReceiveTimestamp: "150" },
        MessageAttributes: {
          kind: { DataType: "String", StringValue: "job" },
          blob: { DataType: "Binary", BinaryValue: new Uint8Array([1, 2, 3]) },
        },
      },
      { eventSourceARN: "arn:aws:sqs:us-east-1:000000000000:q", awsRegion: "us-east-1" },
    );
    expect(record).toEqual({
      messageId: "m1",
      receiptHandle: "rh",
      body: "{}",
      attributes: { ApproximateReceiveCount: "2", SentTimestamp: "100", SenderId: "000000000000", ApproximateFirstReceiveTimestamp: "150" },
      messageAttributes: {
        kind: { stringValue: "job", stringListValues: [], binaryListValues: [], dataType: "String" },
        blob: { binaryValue: "AQID", stringListValues: [], binaryListValues: [], dataType: "Binary" },
      },
      md5OfBody: "99914b932bd37a50b983c5e7c90ae93b",
      eventSource: "aws:sqs",
      eventSourceARN: "arn:aws:sqs:us-east-1:000000000000:q",
      awsRegion: "us-east-1",
    });
  });
});

describe("batchOutcome", () => {
  const ids = ["a", "b", "c"];
  const ok = (payload: string) => ({ payload });
  const allFailed = { succeeded: [], failed: ids, reason: expect.any(String) };

  it("fails the whole batch on a function error, with or without ReportBatchItemFailures", () => {
    const error = { functionError: "Unhandled", payload: '{"errorMessage":"boom"}' };
    expect(batchOutcome(error, ids, true)).toEqual(allFailed);
    expect(batchOutcome(error, ids, false)).toEqual(allFailed);
  });

  it("succeeds the whole batch on any normal return without ReportBatchItemFailures", () => {
    expect(batchOutcome(ok('{"batchItemFailures":[{"itemIdentifier":"a"}]}'), ids, false)).toEqual({ succeeded: ids, failed: [] });
  });

  it.each(["", "null", "{}", '{"batchItemFailures":[]}', '{"batchItemFailures":null}', '{"statusCode":200}'])(
    "succeeds the whole batch on %j",
    (payload) => {
      expect(batchOutcome(ok(payload), ids, true)).toEqual({ succeeded: ids, failed: [] });
    },
  );

  it("fails only the listed items", () => {
    const payload = '{"batchItemFailures":[{"itemIdentifier":"b"},{"itemIdentifier":"b"}]}';
    expect(batchOutcome(ok(payload), ids, true)).toEqual({ succeeded: ["a", "c"], failed: ["b"] });
  });

  it.each([
    ["not JSON", "{"],
    ["not an object", '"fine"'],
    ["a list", "[]"],
    ["batchItemFailures not a list", '{"batchItemFailures":{"itemIdentifier":"a"}}'],
    ["an empty itemIdentifier", '{"batchItemFailures":[{"itemIdentifier":""}]}'],
    ["a null itemIdentifier", '{"batchItemFailures":[{"itemIdentifier":null}]}'],
    ["a misspelt key", '{"batchItemFailures":[{"itemId":"a"}]}'],
    ["an id not in the batch", '{"batchItemFailures":[{"itemIdentifier":"z"}]}'],
  ])("fails the whole batch on a response with %s", (_, payload) => {
    expect(batchOutcome(ok(payload), ids, true)).toEqual(allFailed);
  });
});
