import type { Sleep } from "./ports.ts";

/** Waits `ms` or until `wake` settles, whichever comes first, leaving no timer behind. */
export const sleep: Sleep = (ms, wake) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    void wake?.then(() => {
      clearTimeout(timer);
      resolve();
    });
  });
