import { UpdateCommand } from "@aws-sdk/lib-dynamodb";
import type { UsageMeter } from "../ports.ts";
import { conditional, DynamoDbTable, sdk } from "./dynamodb-table.ts";

/** Counters in one table: `jobs#<tenant>` (jobs held) and `tokens#<tenant>#<minute>` (expire after two minutes). */
export class DynamoDbUsageMeter extends DynamoDbTable implements UsageMeter {
  takeJobs(tenant: string, count: number, limit: number): Promise<boolean> {
    return this.#charge(jobsKey(tenant), count, limit, undefined);
  }

  async giveBackJobs(tenant: string, count: number): Promise<void> {
    await this.#add(jobsKey(tenant), -count);
  }

  chargeTokens(tenant: string, minute: number, tokens: number, limit: number): Promise<boolean> {
    return this.#charge(tokensKey(tenant, minute), tokens, limit, (minute + 2) * 60);
  }

  async refundTokens(tenant: string, minute: number, tokens: number): Promise<void> {
    await this.#add(tokensKey(tenant, minute), -tokens);
  }

  async #charge(key: string, amount: number, limit: number, expiresAt: number | undefined): Promise<boolean> {
    // The condition lets a counter that does not exist yet take anything: refuse too much here.
    if (amount > limit) return false;
    const out = await conditional(`charge ${key}`, () =>
      this.client.send(
        new UpdateCommand({
          TableName: this.tableName,
          Key: { key },
          UpdateExpression: expiresAt === undefined ? "ADD used :n" : "ADD used :n SET expires_at = :exp",
          ConditionExpression: "attribute_not_exists(used) OR used <= :room",
          ExpressionAttributeValues: { ":n": amount, ":room": limit - amount, ...(expiresAt === undefined ? {} : { ":exp": expiresAt }) },
        }),
      ),
    );
    return out !== undefined;
  }

  async #add(key: string, amount: number): Promise<void> {
    await sdk(`adjust ${key}`, () =>
      this.client.send(new UpdateCommand({ TableName: this.tableName, Key: { key }, UpdateExpression: "ADD used :n", ExpressionAttributeValues: { ":n": amount } })),
    );
  }
}

const jobsKey = (tenant: string) => `jobs#${tenant}`;
const tokensKey = (tenant: string, minute: number) => `tokens#${tenant}#${minute}`;
