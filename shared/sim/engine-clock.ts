/** Simulated time, ms: the engines' only notion of time, so tests and the tuning simulator can drive it by hand. */
export type EngineClock = {
  now(): number;
  /** Calls `fn` once, no earlier than `delayMs` simulated ms from now; returns a cancel. */
  setTimer(fn: () => void, delayMs: number): () => void;
};
