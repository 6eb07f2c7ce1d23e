// Tenant administration for a running stack: creates tenants and rotates their API keys.
//
//   npm run tenant -- create NAME [--admin]   prints the new tenant's API key (shown once)
//   npm run tenant -- rotate NAME             prints a new key; the tenant's old keys stop working
//
// It talks to the stack's DynamoDB endpoint: BATCHLINE_DYNAMODB_ENDPOINT, or 127.0.0.1 on
// BATCHLINE_DYNAMODB_PORT (8000) for the embedded stack; BATCHLINE_STAGE names the tables
// (default local). With AWS_REGION and real credentials and no endpoint, it talks to AWS.
import { parseArgs } from "node:util";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { createTenant, rotateTenantKey } from "#shared/app/tenants";
import { DynamoDbApiKeyStore } from "#shared/aws/dynamodb-stores";
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
  const { positionals, values } = parseArgs({ allowPositionals: true, options: { admin: { type: "boolean", default: false } } });
  const [command, tenant] = positionals;
  if ((command !== "create" && command !== "rotate") || !tenant) throw new Error("usage: npm run tenant -- create NAME [--admin] | rotate NAME");
  const tableName = `batchline-${process.env.BATCHLINE_STAGE || "local"}-api-keys`;
  const deps = { apiKeys: new DynamoDbApiKeyStore({ client: client(), tableName }), clock: systemClock };
  if (command === "create") {
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
