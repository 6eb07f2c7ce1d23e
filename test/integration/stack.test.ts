import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { GetItemCommand, PutItemCommand } from "@aws-sdk/client-dynamodb";
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand } from "@aws-sdk/client-sqs";
import type { SQSEvent } from "aws-lambda";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { hashApiKey } from "#shared/core/api-keys";
import { localDynamoDbClient } from "#local/dynamodb";
import { isListening } from "#local/ports";
import { localQueueArn, localSqsClient } from "#local/sqs";
import { type Stack, startStack } from "#local/stack";

const stage = "itest";
const prefix = `batchline-${stage}`;
const routeQueue = `${prefix}-llama-2-7b`;

describe("startStack", () => {
  let dataDir: string;
  const stacks: Stack[] = [];
  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "batchline-stack-"));
  });
  const stopAll = () => Promise.all(stacks.splice(0).map((s) => s.stop()));
  afterEach(async () => {
    await stopAll();
    await rm(dataDir, { recursive: true, force: true });
  });
  const start = async (options: Parameters<typeof startStack>[0]) => {
    const stack = await startStack({ stage, sagemaker: false, offline: false, ...options });
    stacks.push(stack);
    return stack;
  };

  it("provisions the template's queues and tables, registers the dev key, and keeps it all across a restart", async () => {
    const first = await start({ dataDir, pollers: false });
    expect(first.tables).toContain(`${prefix}-jobs`);
    const sqs = localSqsClient(first.endpoints.sqs);
    const queue = first.queues.find((q) => q.name === routeQueue);
    const { Attributes } = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queue?.url, AttributeNames: ["RedrivePolicy"] }));
    expect(JSON.parse(Attributes?.RedrivePolicy ?? "{}")).toMatchObject({ deadLetterTargetArn: localQueueArn(`${routeQueue}-dlq`) });
    expect((await readFile(join(dataDir, "dev-api-key"), "utf8")).trim()).toBe(first.apiKey);
    const ddb = localDynamoDbClient(first.endpoints.dynamodb);
    const keyItem = async () => (await ddb.send(new GetItemCommand({ TableName: `${prefix}-api-keys`, Key: { key_hash: { S: hashApiKey(first.apiKey) } } }))).Item;
    const registered = await keyItem();
    expect(registered?.tenant?.S).toBe("dev");
    await sqs.send(new SendMessageCommand({ QueueUrl: queue?.url, MessageBody: "survives" }));
    await ddb.send(new PutItemCommand({ TableName: `${prefix}-jobs`, Item: { job_id: { S: "j1" } } }));
    sqs.destroy();
    ddb.destroy();
    await stopAll();

    const second = await start({ dataDir, pollers: false });
    expect(second.apiKey).toBe(first.apiKey);
    const sqsAgain = localSqsClient(second.endpoints.sqs);
    const ddbAgain = localDynamoDbClient(second.endpoints.dynamodb);
    try {
      const { Messages } = await sqsAgain.send(new ReceiveMessageCommand({ QueueUrl: second.queues.find((q) => q.name === routeQueue)?.url }));
      expect(Messages?.map((m) => m.Body)).toEqual(["survives"]);
      const job = await ddbAgain.send(new GetItemCommand({ TableName: `${prefix}-jobs`, Key: { job_id: { S: "j1" } } }));
      expect(job.Item).toBeDefined();
      const reregistered = await ddbAgain.send(new GetItemCommand({ TableName: `${prefix}-api-keys`, Key: { key_hash: { S: hashApiKey(first.apiKey) } } }));
      expect(reregistered.Item?.created_at).toEqual(registered?.created_at);
    } finally {
      sqsAgain.destroy();
      ddbAgain.destroy();
    }
  });

  it("takes BATCHLINE_API_KEY's key when given", async () => {
    const stack = await start({ pollers: false, apiKey: "bl_chosen" });
    expect(stack.apiKey).toBe("bl_chosen");
  });

  it("runs the template's event source mappings against the function it is given", async () => {
    const invoked = Promise.withResolvers<{ name: string; event: SQSEvent }>();
    const stack = await start({
      invoke: async (name, event) => {
        invoked.resolve({ name, event });
        return { payload: "" };
      },
    });
    expect(stack.mappings.every((m) => m.polling)).toBe(true);
    const sqs = localSqsClient(stack.endpoints.sqs);
    await sqs.send(new SendMessageCommand({ QueueUrl: stack.queues.find((q) => q.name === routeQueue)?.url, MessageBody: "go" }));
    sqs.destroy();
    const { name, event } = await invoked.promise;
    expect(name).toBe(`${prefix}-batcher`);
    expect(event.Records.map((r) => [r.body, r.eventSourceARN])).toEqual([["go", localQueueArn(routeQueue)]]);
  });

  it("starts osls offline on free ports and stops its whole process group", async () => {
    const stack = await start({ offline: true, sagemaker: true, pollers: false });
    const { http, lambda } = stack.endpoints;
    const response = await fetch(`${http}/v1/models`);
    expect(response.status).toBeLessThan(500);
    await stopAll();
    expect(await isListening(Number(new URL(lambda ?? "").port))).toBe(false);
    // Bundling ten functions takes osls 10 s on an idle 2-core machine, several times that on a busy one.
  }, 180_000);
});
