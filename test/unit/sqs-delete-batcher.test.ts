import type { SQSClient } from "@aws-sdk/client-sqs";
import { describe, expect, it } from "vitest";
import { SqsDeleteBatcher } from "#shared/aws/sqs-delete-batcher";
import { RetryableError } from "#shared/core/errors";

type Sent = { QueueUrl: string; Entries: { Id: string; ReceiptHandle: string }[] };

/** An SQS client that answers DeleteMessageBatch with the failures `fail` names, and notes each call. */
function fakeClient(fail: (entry: { Id: string; ReceiptHandle: string }) => { Code: string; SenderFault: boolean } | undefined = () => undefined) {
  const sent: Sent[] = [];
  const client = {
    send: async (command: { input: Sent }) => {
      sent.push(command.input);
      const failed = command.input.Entries.flatMap((e) => {
        const f = fail(e);
        return f ? [{ Id: e.Id, Code: f.Code, SenderFault: f.SenderFault, Message: `${f.Code} for ${e.ReceiptHandle}` }] : [];
      });
      return { Successful: [], Failed: failed };
    },
  };
  return { client: client as unknown as SQSClient, sent };
}

describe("SqsDeleteBatcher", () => {
  it("sends ten at once without waiting, and the rest of a queue's deletes once the linger passes, each queue in its own calls", async () => {
    const { client, sent } = fakeClient();
    const batcher = new SqsDeleteBatcher(client, 20);

    const deletes = [...Array.from({ length: 12 }, (_, i) => batcher.delete("q1", `h${i}`)), batcher.delete("q2", "other")];
    await Promise.resolve();
    expect(sent.map((c) => c.Entries.length)).toEqual([10]);
    await Promise.all(deletes);

    expect(sent.map((c) => [c.QueueUrl, c.Entries.map((e) => e.ReceiptHandle)])).toEqual([
      ["q1", ["h0", "h1", "h2", "h3", "h4", "h5", "h6", "h7", "h8", "h9"]],
      ["q1", ["h10", "h11"]],
      ["q2", ["other"]],
    ]);
  });

  it("fails only the deletes whose entries failed: the sender's fault as SQS names it, SQS's own as worth another try", async () => {
    const { client } = fakeClient((e) => (e.ReceiptHandle === "stale" ? { Code: "ReceiptHandleIsInvalid", SenderFault: true } : e.ReceiptHandle === "busy" ? { Code: "InternalError", SenderFault: false } : undefined));
    const batcher = new SqsDeleteBatcher(client, 5);

    const [ok, stale, busy] = await Promise.allSettled([batcher.delete("q", "fine"), batcher.delete("q", "stale"), batcher.delete("q", "busy")]);

    expect(ok.status).toBe("fulfilled");
    expect(stale.status === "rejected" && (stale.reason as Error).name).toBe("ReceiptHandleIsInvalid");
    expect(busy.status === "rejected" && busy.reason).toBeInstanceOf(RetryableError);
  });

  it("fails every delete of a call that failed as a whole, translated", async () => {
    const client = { send: async () => Promise.reject(Object.assign(new Error("socket hang up"), { code: "ECONNRESET" })) } as unknown as SQSClient;
    const batcher = new SqsDeleteBatcher(client, 5);

    const results = await Promise.allSettled([batcher.delete("q", "a"), batcher.delete("q", "b")]);

    expect(results.every((r) => r.status === "rejected" && r.reason instanceof RetryableError)).toBe(true);
  });
});
