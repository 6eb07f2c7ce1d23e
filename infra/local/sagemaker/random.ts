/**
 * Seeded randomness for the emulator: generated text, early stops and injected faults must repeat
 * run after run, which Math.random cannot.
 */

/** A PRNG seeded by a string (FNV-1a hash into mulberry32): the same text, the same sequence. */
export function seededRandom(seed: string): () => number {
  return mulberry32(fnv1a(seed));
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

function mulberry32(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
