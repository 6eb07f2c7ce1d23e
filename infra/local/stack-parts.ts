import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadRouteCatalog } from "#shared/config";
import type { LocalAutoscaler } from "./autoscaler.ts";
import type { FrontDoor } from "./front-door.ts";
import { type LocalDynamoDb, startLocalDynamoDb } from "./dynamodb.ts";
import type { RunningEventSourceMapping } from "./event-source-mapping.ts";
import type { Logger } from "./log.ts";
import type { RunningOffline } from "./offline.ts";
import { type SageMakerEmulator, startSageMakerEmulator } from "./sagemaker/server.ts";
import { type LocalSqs, startLocalSqs } from "./sqs.ts";
import { type StoreProcess, startStoreProcess } from "./store-process.ts";
import { HOST, type StackOptions, type StackSettings } from "./stack-options.ts";
import type { RunningSweeper } from "./ttl-sweeper.ts";
import type { MeteringProxy } from "./metering-proxy.ts";
import type { RunningScheduler } from "./scheduler.ts";

/** What a stack has running, filled in as it starts, so that a failed start stops what it had started. */
export type Parts = {
  sqs?: LocalSqs;
  dynamodb?: LocalDynamoDb;
  /** The stores' processes, when they run in processes of their own (StackOptions.storeProcesses). */
  stores?: { readonly sqs: StoreProcess; readonly dynamodb: StoreProcess };
  /** A data folder made for the store processes (the stack had none), removed at stop. */
  scratchDataDir?: string;
  sagemaker?: SageMakerEmulator;
  autoscaler?: LocalAutoscaler;
  offline?: RunningOffline;
  frontDoor?: FrontDoor;
  clients?: { destroy(): void }[];
  mappings: RunningEventSourceMapping[];
  sweeper?: RunningSweeper;
  scheduler?: RunningScheduler;
  /** A metered stack's proxies (stack-metering.ts). */
  proxies?: MeteringProxy[];
};

export type Emulators = { readonly sqs: LocalSqs; readonly dynamodb: LocalDynamoDb; readonly sagemaker: SageMakerEmulator | undefined };

/** The emulators the rest stands on: SQS, DynamoDB and (unless turned off) the SageMaker runtime. */
export async function startEmulators(parts: Parts, settings: StackSettings, options: StackOptions): Promise<Emulators> {
  if (options.storeProcesses) {
    // A store that restarts needs its data on disk, stack data dir or not.
    const dataDir = options.dataDir ?? (parts.scratchDataDir = await mkdtemp(join(tmpdir(), "batchline-stores-")));
    const [sqs, dynamodb] = await Promise.all([
      startStoreProcess("sqs", { port: options.ports?.sqs ?? 0, host: HOST, dataDir: join(dataDir, "sqs") }),
      startStoreProcess("dynamodb", { port: options.ports?.dynamodb ?? 0, host: HOST, dataDir: join(dataDir, "dynamodb") }),
    ]);
    parts.sqs = sqs;
    parts.dynamodb = dynamodb;
    parts.stores = { sqs, dynamodb };
  } else {
    parts.sqs = await startLocalSqs({ port: options.ports?.sqs ?? 0, host: HOST, dataDir: settings.dataPath("sqs"), meter: options.meter });
    parts.dynamodb = await startLocalDynamoDb({ port: options.ports?.dynamodb ?? 0, host: HOST, dataDir: settings.dataPath("dynamodb") });
  }
  if (options.sagemaker ?? true) {
    parts.sagemaker = await startSageMakerEmulator({
      catalog: loadRouteCatalog(settings.routesFile),
      port: options.ports?.sagemaker ?? 0,
      host: HOST,
      timeScale: options.timeScale ?? 1,
      scalingTimeCompression: options.scalingTimeCompression ?? 1,
      // The functions call the deployed names (`<prefix>-<name>`), as in AWS.
      resourcePrefix: settings.prefix,
    });
  }
  return { sqs: parts.sqs, dynamodb: parts.dynamodb, sagemaker: parts.sagemaker };
}

/** In dependency order: the pollers still need offline and SQS to finish what they hold. */
export async function stopParts(parts: Parts, log: Logger): Promise<void> {
  parts.autoscaler?.stop();
  parts.autoscaler = undefined;
  const mappings = parts.mappings.splice(0);
  await Promise.all([...mappings.map((m) => m.stop()), parts.sweeper?.stop(), parts.scheduler?.stop()]);
  parts.sweeper = undefined;
  parts.scheduler = undefined;
  const { offline, sqs, dynamodb, sagemaker, clients } = parts;
  parts.offline = parts.sqs = parts.dynamodb = parts.sagemaker = parts.clients = undefined;
  await parts.frontDoor?.close();
  parts.frontDoor = undefined;
  await offline?.stop();
  await Promise.allSettled((parts.proxies ?? []).map((p) => p.close()));
  parts.proxies = undefined;
  for (const client of clients ?? []) client.destroy();
  parts.stores = undefined;
  const closing = await Promise.allSettled([sagemaker?.close(), sqs?.close(), dynamodb?.close()]);
  for (const result of closing) if (result.status === "rejected") log.warn(`closing an emulator: ${String(result.reason)}`);
  if (parts.scratchDataDir !== undefined) await rm(parts.scratchDataDir, { recursive: true, force: true });
  parts.scratchDataDir = undefined;
}
