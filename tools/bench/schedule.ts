import { setTimeout as delay } from "node:timers/promises";

/** Waits until `performance.now()` reaches `atMs` (timers may fire a little early: re-arm). */
export async function sleepUntil(atMs: number): Promise<void> {
  for (let left = atMs - performance.now(); left > 0; left = atMs - performance.now()) await delay(Math.max(1, left));
}

/**
 * Sends each item at its time after `originMs`, without waiting for earlier sends to finish
 * (an open loop: a slow system does not slow the arrivals down). Resolves when all are sent.
 */
export async function openLoop<T extends { readonly atMs: number }>(items: readonly T[], originMs: number, send: (item: T) => Promise<void>): Promise<void> {
  const sending: Promise<void>[] = [];
  for (const item of items) {
    await sleepUntil(originMs + item.atMs);
    sending.push(send(item));
  }
  await Promise.all(sending);
}
