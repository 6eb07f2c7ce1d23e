import { setTimeout as delay } from "node:timers/promises";
import { type DynamoDbFaultProxy, startDynamoDbFaultProxy } from "#local/dynamodb-fault-proxy";
import { freePort } from "#local/ports";
import type { StoreControl } from "#local/stack";
import { round } from "./counting.ts";
import type { RunConsole } from "./logs.ts";

export type StoreName = "dynamodb" | "sqs";

/** SIGKILL a store's server `afterWallSeconds` after the faults go on; start it again on its data `forWallSeconds` later. */
export type StoreCrash = { readonly afterWallSeconds: number; readonly forWallSeconds: number };
export type StoreCrashSchedule = Readonly<Partial<Record<StoreName, StoreCrash>>>;

/** Counters of failed calls, read at the kill and again once the store is back (plus `settleMs`): their growth is the crash's toll. */
export type FailureCounters = () => Readonly<Record<string, number>>;

export type StoreCrashFigures = {
  readonly happened: boolean;
  /** From the faults going on to the SIGKILL. */
  readonly killed_at_s: number | null;
  /** From the SIGKILL until the new process listened. */
  readonly down_s: number | null;
  /** Starting the new process (loading the data file) until it listened. */
  readonly restart_s: number | null;
  /** How each counter grew from the kill until `settle_s` after the store was back. */
  readonly failed_meanwhile: Readonly<Record<string, number>>;
  readonly settle_s: number;
};

export type RunningStoreCrashes = {
  /** Cancels crashes not yet begun, brings a store that is down back at once, and waits for both to be over. */
  end(): Promise<void>;
  figures(): Readonly<Partial<Record<StoreName, StoreCrashFigures>>>;
};

export type StoreCrashSettings = {
  readonly stores: Readonly<Record<StoreName, StoreControl>>;
  readonly schedule: StoreCrashSchedule;
  readonly counters: FailureCounters;
  readonly console: RunConsole;
  /** After the store is back, how long its toll goes on being counted (retries and redeliveries that follow). */
  readonly settleMs: number;
};

/** Starts the schedule's crashes, each on its own clock from now (when the faults go on). */
export function startStoreCrashes({ stores, schedule, counters, console, settleMs }: StoreCrashSettings): RunningStoreCrashes {
  const startedAt = Date.now();
  const ending = new AbortController();
  const figures: Partial<Record<StoreName, StoreCrashFigures>> = {};
  const pause = (ms: number) => delay(ms, undefined, { signal: ending.signal }).catch(() => undefined);

  const crash = async (name: StoreName, { afterWallSeconds, forWallSeconds }: StoreCrash) => {
    const store = stores[name];
    const settle_s = settleMs / 1000;
    figures[name] = { happened: false, killed_at_s: null, down_s: null, restart_s: null, failed_meanwhile: {}, settle_s };
    await pause(afterWallSeconds * 1000);
    if (ending.signal.aborted) return;
    const before = counters();
    const killedAt = Date.now();
    await store.kill();
    console.say(`store crash: ${name} SIGKILLed; back in ${forWallSeconds} s`);
    await pause(forWallSeconds * 1000);
    const restartAt = Date.now();
    await store.restart();
    const backAt = Date.now();
    console.say(`store crash: ${name} restarted on its data in ${backAt - restartAt} ms`);
    await pause(settleMs);
    const after = counters();
    figures[name] = {
      happened: true,
      killed_at_s: round((killedAt - startedAt) / 1000, 1),
      down_s: round((backAt - killedAt) / 1000, 1),
      restart_s: round((backAt - restartAt) / 1000, 2),
      failed_meanwhile: Object.fromEntries(Object.entries(after).map(([key, value]) => [key, value - (before[key] ?? 0)])),
      settle_s,
    };
  };

  const running = Object.entries(schedule).flatMap(([name, when]) => (when ? [crash(name as StoreName, when)] : []));
  const done = Promise.all(running);
  done.catch(() => undefined);
  return {
    async end() {
      ending.abort();
      await done;
    },
    figures: () => structuredClone(figures),
  };
}

/**
 * fauxqs on a port of our choosing (the stack starts it there) and a proxy the functions reach it
 * through. With no faults set, the fault proxy forwards any AWS JSON protocol as it is (SQS's
 * included); here it counts the functions' SQS calls that found no server while fauxqs was down.
 */
export async function startSqsWatch(): Promise<{ readonly port: number; readonly proxy: DynamoDbFaultProxy }> {
  const port = await freePort();
  return { port, proxy: await startDynamoDbFaultProxy({ target: `http://127.0.0.1:${port}`, serverName: "SQS" }) };
}
