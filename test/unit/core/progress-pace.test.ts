import { describe, expect, it } from "vitest";
import { PROGRESS_GAP_MS, PROGRESS_SUBSCRIBERS_REREAD_MS, progressDelayMs, subscribersStale } from "#shared/core/progress-pace";

describe("progressDelayMs", () => {
  it("tells a batch's first change at once", () => {
    expect(progressDelayMs(undefined, 5_000)).toBe(0);
  });

  it("waits out the gap since the last event, and no longer", () => {
    expect(progressDelayMs(5_000, 5_300)).toBe(PROGRESS_GAP_MS - 300);
    expect(progressDelayMs(5_000, 5_000 + PROGRESS_GAP_MS)).toBe(0);
    expect(progressDelayMs(5_000, 9_000)).toBe(0);
    expect(progressDelayMs(5_000, 5_100, 250)).toBe(150);
  });
});

describe("subscribersStale", () => {
  it("reads a batch's subscribers again once the list is older than the reread period", () => {
    expect(subscribersStale(1_000, 1_000 + PROGRESS_SUBSCRIBERS_REREAD_MS - 1)).toBe(false);
    expect(subscribersStale(1_000, 1_000 + PROGRESS_SUBSCRIBERS_REREAD_MS)).toBe(true);
    expect(subscribersStale(1_000, 1_500, 500)).toBe(true);
  });
});
