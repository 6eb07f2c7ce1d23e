import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { readFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { CreateTableCommand, DynamoDBClient, type CreateTableCommandInput } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import dynalite from "dynalite";
import { parse as parseYaml } from "yaml";

/**
 * Real local servers for the adapter integration tests, on 127.0.0.1 with a free port, and the
 * SDK client settings that talk to them. Each test file starts its own and closes it in afterAll.
 */
export const localClientConfig = (endpoint: string) => ({
  endpoint,
  region: "us-east-1",
  credentials: { accessKeyId: "local", secretAccessKey: "local" },
});

/** A name part unique to one test file or one test: tables, queues, ids. */
export const uniqueSuffix = (): string => randomBytes(4).toString("hex");

export type LocalServer = { readonly endpoint: string; close(): Promise<void> };

/** dynalite in memory; tables become ACTIVE at once. */
export async function startDynalite(): Promise<LocalServer> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}

/** fauxqs bound to 127.0.0.1 (startFauxqs() would listen on 0.0.0.0). */
export async function startFauxqs(): Promise<LocalServer> {
  // Imported here: fauxqs 2 loads node:sqlite (with a warning) that the other tests do not need.
  const { buildApp } = await import("fauxqs");
  const app = buildApp({ logger: false });
  const endpoint = await app.listen({ port: 0, host: "127.0.0.1" });
  return { endpoint, close: () => app.close() };
}

/** A document client configured like shared/aws/clients.ts, on a local endpoint. */
export function localDocumentClient(endpoint: string): DynamoDBDocumentClient {
  return DynamoDBDocumentClient.from(new DynamoDBClient(localClientConfig(endpoint)), { marshallOptions: { removeUndefinedValues: true } });
}

/** The CreateTable parameters that CloudFormation's AWS::DynamoDB::Table shares with the API. */
const createTableKeys = ["TableName", "BillingMode", "AttributeDefinitions", "KeySchema", "GlobalSecondaryIndexes", "LocalSecondaryIndexes", "ProvisionedThroughput"] as const;

type CloudFormationTemplate = { Resources?: Record<string, { Type?: string; Properties?: Record<string, unknown> }> };

/** The CreateTable input of each table of infra/tables.yml, by logical id, with the file's names under `prefix`. */
function tableDefinitions(prefix: string, file: string): Record<string, CreateTableCommandInput> {
  const template = parseYaml(readFileSync(file, "utf8").replaceAll("${self:custom.prefix}", prefix)) as CloudFormationTemplate;
  const tables = Object.entries(template.Resources ?? {}).filter(([, r]) => r.Type === "AWS::DynamoDB::Table");
  return Object.fromEntries(tables.map(([logicalId, resource]) => {
    const properties = resource.Properties ?? {};
    return [logicalId, Object.fromEntries(createTableKeys.filter((k) => k in properties).map((k) => [k, properties[k]])) as unknown as CreateTableCommandInput];
  }));
}

/**
 * Creates every table of infra/tables.yml under `prefix`, from the file itself so the tests check
 * the real key schemas and indexes. What CreateTable does not take (TTL, which dynalite lacks) is
 * left out. Returns the created table names by logical id.
 */
export async function createTablesFromInfra(client: DynamoDBClient, prefix: string, file = "infra/tables.yml"): Promise<Record<string, string>> {
  const names: Record<string, string> = {};
  for (const [logicalId, input] of Object.entries(tableDefinitions(prefix, file))) {
    await client.send(new CreateTableCommand(input));
    names[logicalId] = String(input.TableName);
  }
  return names;
}

/** Creates one table of infra/tables.yml (by logical id, e.g. JobsTable) under a name of its own. */
export async function createTableFromInfra(client: DynamoDBClient, logicalId: string, tableName: string, file = "infra/tables.yml"): Promise<string> {
  const input = tableDefinitions("", file)[logicalId];
  if (!input) throw new Error(`${file} has no table ${logicalId}`);
  await client.send(new CreateTableCommand({ ...input, TableName: tableName }));
  return tableName;
}

/** Calls `probe` until it returns a value other than undefined, every `everyMs` (0: at once again), or fails after `timeoutMs`. */
export async function pollUntil<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 10_000, everyMs = 0): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => (everyMs > 0 ? setTimeout(resolve, everyMs) : setImmediate(resolve)));
  }
}
