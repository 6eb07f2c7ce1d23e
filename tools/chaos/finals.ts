import { setTimeout as delay } from "node:timers/promises";
import type { ProcessInvoker } from "#local/process-invoker";
import type { Stack } from "#local/stack";
import type { RunConsole } from "./logs.ts";
import { queueDepths } from "./measurements.ts";
import type { ChaosOptions } from "./options.ts";
import type { Subscriber } from "./subscribers.ts";
import { waitFor } from "./wait-for.ts";
import { isTerminalStatus } from "./writes.ts";

export type FinalsWatch = {
  readonly options: ChaosOptions;
  readonly stack: Stack;
  readonly routeQueues: readonly string[];
  readonly invoker: ProcessInvoker;
  readonly subscribers: readonly Subscriber[];
  /** Every job's status once the faults are off. */
  readonly states: ReadonlyMap<string, string>;
  readonly console: RunConsole;
};

/**
 * Once the faults are off: gives every subscriber the time to reconnect if it must and receive the
 * final events it is owed, and the invocations still running the time to end as they would.
 */
export async function awaitFinals({ options, stack, routeQueues, invoker, subscribers, states, console }: FinalsWatch): Promise<void> {
  const owed = (s: Subscriber) => [...s.jobs].filter((id) => isTerminalStatus(states.get(id)) && s.finalStatus.get(id) !== states.get(id));
  // Meanwhile the invocations still running (a batcher topping up, one handed a finished job's
  // message again) end as they would: their reports (RSS, CPU, outcome) count, and the messages
  // they hold are deleted, rather than killed with the stack.
  const invocationsEnded = waitFor(() => invoker.running() === 0, (options.lambdaTimeoutSeconds + 10) * 1000, "invocations to end").catch((error: unknown) => {
    console.say(`${String(error)}; ${invoker.running()} still running are killed with the stack`);
  });
  // A batcher killed after writing a final state but before telling the subscribers leaves its
  // message invisible until the visibility timeout; its redelivery tells them (at least once).
  const redeliveredBy = Date.now() + (options.visibilityTimeoutSeconds + options.lambdaTimeoutSeconds + 30) * 1000;
  while (subscribers.some((s) => owed(s).length > 0) && Date.now() < redeliveredBy) {
    const depths = await queueDepths(stack, routeQueues);
    if (Object.values(depths).every((n) => n === 0) && invoker.running() === 0) break;
    await delay(1000);
  }
  await waitFor(() => subscribers.every((s) => s.connected && s.settled && owed(s).length === 0), options.notifyTimeoutMs, "final events").catch(() => undefined);
  await invocationsEnded;
}
