import { describe, expect, it } from "vitest";
import { virtualClock } from "#shared/sim/virtual-clock";

describe("the virtual clock", () => {
  it("fires timers in order of their due time, ties in the order they were set, and jumps time to each", () => {
    // Prepare
    const clock = virtualClock();
    const fired: string[] = [];
    const note = (name: string) => () => fired.push(`${name}@${clock.now()}`);
    clock.setTimer(note("late"), 50);
    clock.setTimer(note("first-tie"), 10);
    clock.setTimer(note("second-tie"), 10);
    clock.setTimer(() => {
      note("nested-setter")();
      clock.setTimer(note("nested"), 5);
    }, 20);

    // Act
    const count = clock.run();

    // Assess
    expect(fired).toEqual(["first-tie@10", "second-tie@10", "nested-setter@20", "nested@25", "late@50"]);
    expect(count).toBe(5);
    expect(clock.pending()).toBe(0);
  });

  it("skips a cancelled timer and stops at the given time, leaving later ones pending", () => {
    // Prepare
    const clock = virtualClock(1000);
    const fired: number[] = [];
    const cancel = clock.setTimer(() => fired.push(1), 5);
    clock.setTimer(() => fired.push(2), 10);
    clock.setTimer(() => fired.push(3), 500);
    cancel();

    // Act
    clock.run(1100);

    // Assess
    expect(fired).toEqual([2]);
    expect(clock.now()).toBe(1100);
    expect(clock.pending()).toBe(1);
  });
});
