// Tenant administration for a running stack: creates tenants and rotates their API keys.
//
//   npm run tenant -- create NAME [--admin]   prints the new tenant's API key (shown once)
//   npm run tenant -- rotate NAME             prints a new key; the tenant's old keys stop working
//   npm run tenant -- quota NAME --max-jobs-in-flight N --tokens-per-minute M
//
// It talks to the stack's DynamoDB endpoint: BATCHLINE_DYNAMODB_ENDPOINT, or 127.0.0.1 on
// BATCHLINE_DYNAMODB_PORT (8000) for the embedded stack; BATCHLINE_STAGE names the tables
// (default local). With AWS_REGION and real credentials and no endpoint, it talks to AWS.
import { parseArgs } from "node:util";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { createTenant, rotateTenantKey } from "#shared/app/tenants";
import { DynamoDbApiKeyStore } from "#shared/aws/dynamodb-api-keys";
import { DynamoDbTenantStore } from "#shared/aws/dynamodb-tenants";
import { systemClock } from "#shared/aws/deps";
import { BatchlineError } from "#shared/core/errors";

function client(): DynamoDBDocumentClient {
  const env = process.env;
  const local = env.BATCHLINE_DYNAMODB_ENDPOINT ?? (env.AWS_REGION ? undefined : `http://127.0.0.1:${env.BATCHLINE_DYNAMODB_PORT ?? "8000"}`);
  const options = local
    ? { endpoint: local, region: "us-east-1", credentials: { accessKeyId: "local", secretAccessKey: "local" } }
    : {};
  return DynamoDBDocumentClient.from(new DynamoDBClient(options), { marshallOptions: { removeUndefinedValues: true } });
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({
    allowPositionals: true,
    options: {
      admin: { type: "boolean", default: false },
      "max-jobs-in-flight": { type: "string" },
      "tokens-per-minute": { type: "string" },
    },
  });
  const [command, tenant] = positionals;
  if (!["create", "rotate", "quota"].includes(command ?? "") || !tenant) {
    throw new Error("usage: npm run tenant -- create NAME [--admin] | rotate NAME | quota NAME --max-jobs-in-flight N --tokens-per-minute M");
  }
  const prefix = `batchline-${process.env.BATCHLINE_STAGE || "local"}`;
  const dynamodb = client();
  const deps = { apiKeys: new DynamoDbApiKeyStore({ client: dynamodb, tableName: `${prefix}-api-keys` }), clock: systemClock };
  if (command === "quota") {
    const quota = { max_jobs_in_flight: Number(values["max-jobs-in-flight"]), tokens_per_minute: Number(values["tokens-per-minute"]) };
    if (!(Number.isInteger(quota.max_jobs_in_flight) && quota.max_jobs_in_flight > 0 && Number.isInteger(quota.tokens_per_minute) && quota.tokens_per_minute > 0)) {
      throw new Error("quota needs --max-jobs-in-flight and --tokens-per-minute, both positive integers");
    }
    await new DynamoDbTenantStore({ client: dynamodb, tableName: `${prefix}-tenants` }).setQuota(tenant, quota);
    console.log(`tenant ${tenant}: at most ${quota.max_jobs_in_flight} jobs in flight and ${quota.tokens_per_minute} tokens per minute`);
  } else if (command === "create") {
    const { key } = await createTenant(deps, tenant, values.admin ? "admin" : "member");
    console.log(`tenant ${tenant} created; its API key (shown once):\n${key}`);
  } else {
    const { key, revoked } = await rotateTenantKey(deps, tenant);
    console.log(`tenant ${tenant}: ${revoked} old key(s) revoked; the new API key (shown once):\n${key}`);
  }
}

main().catch((error: unknown) => {
  console.error(error instanceof BatchlineError || error instanceof Error ? error.message : String(error));
  process.exit(1);
});
