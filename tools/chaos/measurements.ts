import { readdir, readFile } from "node:fs/promises";
import { GetQueueAttributesCommand, SQSClient } from "@aws-sdk/client-sqs";
import type { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { localClientConfig } from "#local/aws";
import { procCpuMs } from "#local/process-invoker";
import type { Stack } from "#local/stack";
import type { JobRecord } from "#shared/core/jobs";
import { measureDrift, type CounterDrift } from "./drift.ts";
import { settleSlotsLater, type SlotSettling } from "./slot-settle.ts";

export type EndMeasurements = {
  readonly emulator: Record<string, number>;
  /** The dev tenant's quota counter of jobs in flight: 0 when every slot came back. */
  readonly jobsInFlight: number;
  /** Every counter against the jobs (tools/chaos/drift.ts), once the slot sweep ran as it would later. */
  readonly drift: CounterDrift;
  /** The same before that sweep: what the submits, batchers and their retries left on their own. */
  readonly driftBeforeSweep: CounterDrift;
  readonly slotSweep: SlotSettling;
  readonly queuesLeft: Record<string, number>;
  /** This process's CPU since `cpuAtStart`. */
  readonly mainCpu: NodeJS.CpuUsage;
  /** osls offline's (the HTTP and WebSocket functions'). */
  readonly offlineCpuMs: number | undefined;
};

/** What the stack and the machine say once the run is over. */
export async function measureAtEnd(at: {
  readonly stack: Stack;
  readonly sagemaker: string;
  readonly ddb: DynamoDBDocumentClient;
  readonly routeQueues: readonly string[];
  readonly cpuAtStart: NodeJS.CpuUsage;
  readonly records: readonly JobRecord[];
}): Promise<EndMeasurements> {
  const { stack, ddb, routeQueues } = at;
  const emulator = await emulatorCounters(at.sagemaker);
  const driftBeforeSweep = await measureDrift(ddb, stack.prefix, at.records, "dev");
  const slotSweep = await settleSlotsLater(ddb, stack.prefix);
  const drift = await measureDrift(ddb, stack.prefix, at.records, "dev");
  const queuesLeft = await queueDepths(stack, [...routeQueues, ...routeQueues.map((q) => `${q}-dlq`)]);
  const mainCpu = process.cpuUsage(at.cpuAtStart);
  const offlineCpuMs = await childCpuMs("offline start");
  return { emulator, jobsInFlight: drift.jobs_in_flight.counter, drift, driftBeforeSweep, slotSweep, queuesLeft, mainCpu, offlineCpuMs };
}

/** The SageMaker emulator's counters, summed over its components. */
async function emulatorCounters(sagemaker: string): Promise<Record<string, number>> {
  const stats = (await (await fetch(`${sagemaker}/_emulator/stats`)).json()) as { components: Record<string, unknown>[] };
  const sum = (name: string) => stats.components.reduce((total, c) => total + (typeof c[name] === "number" ? (c[name] as number) : 0), 0);
  return {
    invocations: sum("invocations"),
    throttles: sum("throttles"),
    invocation5xxErrors: sum("invocation5xxErrors"),
    invocation4xxErrors: sum("invocation4xxErrors"),
    invocationModelErrors: sum("invocationModelErrors"),
  };
}

/** Messages in each queue, visible, in flight or delayed, by name without the stack's prefix. */
export async function queueDepths(stack: Stack, names: readonly string[]): Promise<Record<string, number>> {
  const sqs = new SQSClient({ ...localClientConfig(stack.endpoints.sqs), useQueueUrlAsEndpoint: false });
  try {
    const depths: Record<string, number> = {};
    for (const name of names) {
      const url = stack.queues.find((q) => q.name === name)?.url;
      if (!url) continue;
      const out = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed"] }));
      const a = out.Attributes ?? {};
      depths[name.slice(stack.prefix.length + 1)] =
        Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesNotVisible ?? 0) + Number(a.ApproximateNumberOfMessagesDelayed ?? 0);
    }
    return depths;
  } finally {
    sqs.destroy();
  }
}

/** CPU (ms) of this process's child whose command line contains `marker` (Linux /proc); undefined when none. */
async function childCpuMs(marker: string): Promise<number | undefined> {
  const pids = await readdir("/proc").catch(() => [] as string[]);
  for (const pid of pids.filter((p) => /^\d+$/.test(p))) {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    if (ppid !== process.pid) continue;
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "")).replaceAll("\0", " ");
    if (cmdline.includes(marker)) return procCpuMs(stat);
  }
  return undefined;
}
