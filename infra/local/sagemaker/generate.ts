/**
 * Deterministic model output for the SageMaker emulator: the same prompt and seed always give the
 * same text, and the text is exactly the number of tokens asked for, so that callers' token
 * accounting can be checked to the token.
 */

/**
 * Common English words that the Llama-2 tokenizer encodes as exactly one token each, with the
 * leading space that joining them adds (test/unit/generate.test.ts checks this with the real
 * tokenizer). Joining n of them with single spaces therefore makes exactly n tokens, with no
 * tokenizer call on the hot path.
 */
export const oneTokenWords: readonly string[] = [
  "the", "of", "and", "to", "in", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on", "not",
  "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "they", "you", "were", "her",
  "she", "there", "had", "one", "all", "we", "can", "their", "has", "more", "been", "also", "its", "would",
  "when", "who", "will", "no", "if", "out", "so", "said", "what", "up", "about", "into", "them", "than",
  "only", "some", "could", "other", "new", "time", "these", "two", "may", "first", "then", "do", "any",
  "like", "my", "now", "over", "such", "our", "man", "me", "even", "most", "made", "after", "well",
  "through", "back", "years", "where", "much", "your", "way", "down", "should", "because", "each", "just",
  "those", "people", "how", "too", "little", "state", "good", "very", "make", "world", "still", "own", "see",
  "men", "work", "long", "get", "here", "between", "both", "life", "being", "under", "never", "day", "same",
  "another", "know", "while", "last", "might", "us", "great", "old", "year", "off", "come", "since",
  "against", "go", "came", "right", "used", "take", "three", "small", "large", "next", "early", "young",
  "important", "few", "public", "bad", "able", "high", "place", "group", "case", "point", "fact", "hand",
  "part", "week", "company", "number", "system", "program", "question", "government", "night", "home",
  "water", "room", "mother", "area", "money", "story", "month", "lot", "study", "book", "eye", "job", "word",
  "business", "issue", "side", "kind", "head", "house", "service", "friend", "father", "power", "hour",
  "game", "line", "end", "member", "law", "car", "city", "community", "name", "president", "team", "minute",
  "idea", "kid", "body", "information", "school", "face", "others", "level", "office", "door", "health",
  "person", "art", "war", "history", "party", "result", "change", "morning", "reason", "research", "girl",
  "moment", "air", "teacher", "force", "education", "foot", "boy", "age", "policy", "music", "market",
  "sense", "nation", "plan", "college", "interest", "death", "experience", "effect", "class", "control",
  "care", "field", "development", "role", "effort", "rate", "heart", "drug",
];

/**
 * Text of exactly `newTokens` Llama-2 tokens, derived from the prompt and the seed.
 *
 * @example
 * generateText("Tell me a story", { newTokens: 3, seed: 7 }) // three words, the same every time
 */
export function generateText(prompt: string, options: { readonly newTokens: number; readonly seed?: number | undefined }): string {
  const next = mulberry32(fnv1a(`${options.seed ?? 0}\u0000${prompt}`));
  const words: string[] = [];
  for (let i = 0; i < options.newTokens; i++) {
    words.push(oneTokenWords[Math.floor(next() * oneTokenWords.length)] ?? "the");
  }
  return words.join(" ");
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    hash ^= text.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193);
  }
  return hash >>> 0;
}

/** A small seeded PRNG: Math.random cannot be seeded, and the text must repeat. */
function mulberry32(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
