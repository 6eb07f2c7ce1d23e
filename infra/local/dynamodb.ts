import { once } from "node:events";
import { mkdir } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import dynalite from "dynalite";
import { localClientConfig } from "./aws.ts";

export type LocalDynamoDb = {
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
};

export type LocalDynamoDbOptions = {
  readonly port?: number;
  readonly host?: string;
  /** LevelDB folder; undefined keeps the tables in memory. */
  readonly dataDir?: string | undefined;
};

/** dynalite on 127.0.0.1. Tables become ACTIVE at once: nothing local gains from waiting. */
export async function startLocalDynamoDb(options: LocalDynamoDbOptions = {}): Promise<LocalDynamoDb> {
  if (options.dataDir !== undefined) await mkdir(options.dataDir, { recursive: true });
  const server = dynalite({
    ...(options.dataDir !== undefined && { path: options.dataDir }),
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
  });
  const host = options.host ?? "127.0.0.1";
  server.listen(options.port ?? 0, host);
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${host}:${port}`,
    port,
    close: () =>
      new Promise<void>((resolve, reject) => {
        // dynalite's close waits for the LevelDB to close; idle keep-alive sockets would hold it.
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeIdleConnections();
      }),
  };
}

export function localDynamoDbClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient(localClientConfig(endpoint));
}
