import { describe, expect, it } from "vitest";
import { jsonBytes, jsonTextBytes, TokenCoalescer, type TokenFrame } from "#shared/core/token-coalescer";

const coalescer = (maxTextBytes = 1000) => new TokenCoalescer({ intervalMs: 50, maxTextBytes });

describe("TokenCoalescer", () => {
  it("sends the first text at once, then at most one frame per interval with all that came meanwhile", () => {
    // Prepare
    const c = coalescer();
    const sent: (TokenFrame & { atMs: number })[] = [];
    const at = (ms: number) => {
      const frame = c.take(ms);
      if (frame) sent.push({ ...frame, atMs: ms });
    };

    // Act: a token every 10 ms from 30 ms, looking for a frame at each
    at(0);
    for (let i = 0; i < 12; i++) {
      c.add(`t${i} `);
      at(30 + 10 * i);
    }
    at(200);

    // Assess
    expect(sent).toEqual([
      { index: 0, text: "t0 ", tokens: 1, atMs: 30 },
      { index: 1, text: "t1 t2 t3 t4 t5 ", tokens: 6, atMs: 80 },
      { index: 2, text: "t6 t7 t8 t9 t10 ", tokens: 11, atMs: 130 },
      { index: 3, text: "t11 ", tokens: 12, atMs: 200 },
    ]);
  });

  it("says when the next frame is due, and nothing while no text waits", () => {
    // Prepare
    const c = coalescer();

    // Act and assess
    expect(c.dueAtMs).toBeUndefined();
    c.add("a");
    expect(c.dueAtMs).toBe(Number.NEGATIVE_INFINITY);
    c.take(100);
    expect(c.dueAtMs).toBeUndefined();
    c.add("b");
    expect(c.dueAtMs).toBe(150);
    expect(c.take(149)).toBeUndefined();
    expect(c.take(150)).toEqual({ index: 1, text: "b", tokens: 2 });
  });

  it("keeps every frame's text within the limit as JSON, splitting a long token between characters", () => {
    // Prepare: escapes, 2-, 3- and 4-byte characters and a lone surrogate, in a token far over the limit
    const long = `"\\\n\u0001é€🙂\ud800x`.repeat(400);
    const c = coalescer(64);
    c.add("a");
    c.add(long);
    c.add("b");

    // Act
    const frames = c.drain();

    // Assess
    expect(frames.every((f) => jsonTextBytes(f.text) <= 64)).toBe(true);
    expect(frames.map((f) => f.text).join("")).toBe(`a${long}b`);
    // A frame ends at a token's end where it can; the long token's parts but its last fill theirs.
    expect(frames.slice(1, -2).every((f) => jsonTextBytes(f.text) > 64 - 6)).toBe(true);
    expect(frames.map((f) => f.index)).toEqual(frames.map((_, i) => i));
    // A token counts once its last part has gone (here with "b", in the last frame); a surrogate pair is never cut.
    expect(frames[0]).toMatchObject({ text: "a", tokens: 1 });
    expect(frames.map((f) => f.tokens)).toEqual([...frames.slice(1).map(() => 1), 3]);
    expect(frames.at(-1)?.text.endsWith("xb")).toBe(true);
    expect(frames.some((f) => /^[\udc00-\udfff]/.test(f.text))).toBe(false);
  });

  it("takes one frame at a time while it streams, the rest at the next interval", () => {
    // Prepare
    const c = coalescer(8);
    for (const t of ["aaaa", "bbbb", "cccc"]) c.add(t);

    // Act and assess
    expect(c.take(0)).toEqual({ index: 0, text: "aaaabbbb", tokens: 2 });
    expect(c.take(10)).toBeUndefined();
    expect(c.take(50)).toEqual({ index: 1, text: "cccc", tokens: 3 });
  });

  it("drains what waits, whatever the time, and nothing when nothing waits", () => {
    // Prepare
    const c = coalescer();
    c.add("a");
    c.take(0);
    c.add("b");
    c.add("c");

    // Act and assess
    expect(c.drain()).toEqual([{ index: 1, text: "bc", tokens: 3 }]);
    expect(c.drain()).toEqual([]);
  });

  it("counts text added for several tokens at once (a resumed generation's text so far) as those tokens, when its last part goes", () => {
    // Prepare
    const c = coalescer(10);

    // Act
    c.add("earlier text of 30 chars here.", 7);
    c.add(" next");
    const frames = c.drain();

    // Assess
    expect(frames.map((f) => f.text).join("")).toBe("earlier text of 30 chars here. next");
    expect(frames.map((f) => f.tokens)).toEqual([0, 0, 7, 8]);
  });

  it("refuses a limit that cannot hold a character", () => {
    expect(() => coalescer(5)).toThrow(RangeError);
  });

  it("measures JSON as it goes on the wire", () => {
    expect(jsonBytes({ text: "é" })).toBe(13);
    expect(jsonTextBytes('"é\n')).toBe(6);
  });
});
