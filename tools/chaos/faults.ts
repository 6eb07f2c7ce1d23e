import type { DynamoDbFaultProxy } from "#local/dynamodb-fault-proxy";
import type { FunctionRunners } from "./function-runners.ts";
import type { ChaosOptions } from "./options.ts";

/** What injects the faults: the DynamoDB proxy, the SageMaker emulator (its base URL) and the batcher runners' kills. */
export type FaultSources = { readonly proxy: DynamoDbFaultProxy; readonly sagemaker: string; readonly runners: FunctionRunners };

/** Every fault of `options` on at once (none when `options.faults` is off). */
export async function faultsOn(options: ChaosOptions, { proxy, sagemaker, runners }: FaultSources): Promise<void> {
  if (!options.faults) return;
  proxy.setFaults({ ...options.dynamodbFaults, seed: options.seed });
  const { outage, ...rest } = options.sagemakerFaults;
  // The emulator counts the outage on its own clock: simulated seconds.
  const settings = {
    ...rest,
    seed: options.seed,
    ...(outage && { outage: { after_seconds: outage.after_wall_seconds * options.timeScale, for_seconds: outage.for_wall_seconds * options.timeScale, kind: outage.kind } }),
  };
  const response = await fetch(`${sagemaker}/_emulator/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(settings) });
  if (!response.ok) throw new Error(`POST /_emulator/faults: ${response.status} ${await response.text()}`);
  runners.killing = true;
}

export async function faultsOff({ proxy, sagemaker, runners }: FaultSources): Promise<void> {
  runners.killing = false;
  proxy.setFaults(undefined);
  await fetch(`${sagemaker}/_emulator/faults`, { method: "DELETE" });
}
