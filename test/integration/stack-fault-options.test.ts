import { GetQueueAttributesCommand } from "@aws-sdk/client-sqs";
import { describe, expect, it } from "vitest";
import { localSqsClient } from "#local/sqs";
import { applyQueueAttributeOverrides, startStack } from "#local/stack";
import type { QueueDefinition } from "#local/template";

const queue = (name: string, attributes: Record<string, string> = { VisibilityTimeout: "300" }): QueueDefinition => ({ logicalId: name, name, attributes });

describe("applyQueueAttributeOverrides", () => {
  it("replaces the named queue's attributes and leaves the rest as the template says", () => {
    const [first, second] = applyQueueAttributeOverrides([queue("q1"), queue("q2")], { q1: { VisibilityTimeout: "20" } });
    expect(first?.attributes).toEqual({ VisibilityTimeout: "20" });
    expect(second).toEqual(queue("q2"));
    expect(applyQueueAttributeOverrides([queue("q1")])).toEqual([queue("q1")]);
  });

  it("refuses a queue the template does not have, and a redrive policy of its own", () => {
    expect(() => applyQueueAttributeOverrides([queue("q1")], { q9: { VisibilityTimeout: "1" } })).toThrow(/no queue q9/);
    expect(() => applyQueueAttributeOverrides([queue("q1")], { q1: { RedrivePolicy: "{}" } })).toThrow(/RedrivePolicy comes from the template/);
  });
});

describe("startStack with fault-testing options", () => {
  it("provisions the overridden visibility timeout and hands the functions the DynamoDB endpoint it is given", async () => {
    const stage = `sfo${Math.random().toString(36).slice(2, 8)}`;
    const routeQueue = `batchline-${stage}-llama-2-7b`;
    const stack = await startStack({
      stage,
      sagemaker: false,
      offline: false,
      pollers: false,
      functionEndpoints: { dynamodb: "http://127.0.0.1:1" },
      queueAttributeOverrides: { [routeQueue]: { VisibilityTimeout: "20" } },
    });
    const sqs = localSqsClient(stack.endpoints.sqs);
    try {
      expect(stack.functionEnv.AWS_ENDPOINT_URL_DYNAMODB).toBe("http://127.0.0.1:1");
      expect(stack.endpoints.dynamodb).not.toBe("http://127.0.0.1:1");
      const attributesOf = async (name: string) =>
        (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: stack.queues.find((q) => q.name === name)?.url, AttributeNames: ["VisibilityTimeout", "RedrivePolicy"] }))).Attributes;
      const overridden = await attributesOf(routeQueue);
      expect(overridden?.VisibilityTimeout).toBe("20");
      expect(JSON.parse(overridden?.RedrivePolicy ?? "{}")).toMatchObject({ maxReceiveCount: 5 });
      // The template's: six times the batcher's 150 s timeout.
      expect((await attributesOf(`batchline-${stage}-llama-3-8b`))?.VisibilityTimeout).toBe("900");
    } finally {
      sqs.destroy();
      await stack.stop();
    }
  });
});
