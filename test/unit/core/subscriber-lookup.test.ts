import { describe, expect, it } from "vitest";
import { subscriberLookup } from "#shared/core/subscriber-lookup";

describe("subscriberLookup", () => {
  it("looks nobody up for a job no subscribe counted itself on", () => {
    expect(subscriberLookup(0, undefined)).toBe("none");
    expect(subscriberLookup(0, 0)).toBe("none");
  });

  it("uses the run's last look-up while the count has not moved, and looks again once it has", () => {
    expect(subscriberLookup(2, undefined)).toBe("read");
    expect(subscriberLookup(2, 2)).toBe("cached");
    expect(subscriberLookup(3, 2)).toBe("read");
  });

  it("looks up the subscribers of a job stored before the count was kept", () => {
    expect(subscriberLookup(undefined, undefined)).toBe("read");
    expect(subscriberLookup(undefined, 1)).toBe("read");
  });
});
