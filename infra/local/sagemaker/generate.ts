import { seededRandom } from "./random.ts";

/**
 * Deterministic model output for the SageMaker emulator: the same prompt and seed always give the
 * same text, and the text is exactly the number of tokens asked for, so that callers' token
 * accounting can be checked to the token.
 */

/**
 * Common English words that both the Llama-2 and the Llama-3 tokenizer encode as exactly one token
 * each, alone and with the leading space that joining them adds (test/unit/generate.test.ts checks
 * this with both real tokenizers). Joining n of them with single spaces therefore makes exactly n
 * tokens, with no tokenizer call on the hot path. ("president", "morning" and "effort" are one
 * Llama-2 token but two Llama-3 tokens at the start of a text, so they are not here.)
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
  "game", "line", "end", "member", "law", "car", "city", "community", "name", "team", "minute",
  "idea", "kid", "body", "information", "school", "face", "others", "level", "office", "door", "health",
  "person", "art", "war", "history", "party", "result", "change", "reason", "research", "girl",
  "moment", "air", "teacher", "force", "education", "foot", "boy", "age", "policy", "music", "market",
  "sense", "nation", "plan", "college", "interest", "death", "experience", "effect", "class", "control",
  "care", "field", "development", "role", "rate", "heart", "drug",
];

/**
 * Output lengths of real traffic: most answers end (EOS) well before max_new_tokens. The length
 * an answer would have is drawn from a log-normal distribution with this median, seeded by the
 * prompt and seed like the text; an answer longer than max_new_tokens is cut there ("length").
 */
export type EarlyStop = { readonly medianTokens: number; readonly sigma: number };

export type Generation = {
  /** The text of each token: a word, with a leading space after the first. */
  readonly tokens: readonly string[];
  /** A token id for each (the word's place in oneTokenWords), for formats that report ids. */
  readonly ids: readonly number[];
  /** "stop" when the answer ended before max_new_tokens (early stop), else "length". */
  readonly finishReason: "length" | "stop";
};

/**
 * The answer to a prompt: the same prompt and seed always give the same tokens, and an early stop
 * gives a prefix of the answer that running to max_new_tokens gives. The stop token itself is
 * neither counted nor timed, so the text always has exactly as many tokens as reported.
 *
 * @example
 * generate("Tell me a story", { maxNewTokens: 3, seed: 7 }) // { tokens: ["war", " the", " car"], ids: [...], finishReason: "length" }
 */
export function generate(
  prompt: string,
  options: { readonly maxNewTokens: number; readonly seed?: number | undefined; readonly earlyStop?: EarlyStop | undefined },
): Generation {
  const seeded = `${options.seed ?? 0}\u0000${prompt}`;
  const wanted = options.earlyStop ? answerLength(seededRandom(`length\u0000${seeded}`), options.earlyStop) : Number.POSITIVE_INFINITY;
  const count = Math.min(options.maxNewTokens, wanted);
  const next = seededRandom(seeded);
  const tokens: string[] = [];
  const ids: number[] = [];
  for (let i = 0; i < count; i++) {
    const id = Math.floor(next() * oneTokenWords.length);
    const word = oneTokenWords[id] ?? "the";
    tokens.push(i === 0 ? word : ` ${word}`);
    ids.push(id);
  }
  return { tokens, ids, finishReason: wanted < options.maxNewTokens ? "stop" : "length" };
}

/**
 * Text of exactly `newTokens` tokens, derived from the prompt and the seed.
 *
 * @example
 * generateText("Tell me a story", { newTokens: 3, seed: 7 }) // three words, the same every time
 */
export function generateText(prompt: string, options: { readonly newTokens: number; readonly seed?: number | undefined }): string {
  return generate(prompt, { maxNewTokens: options.newTokens, seed: options.seed }).tokens.join("");
}

/** A log-normal draw (Box-Muller), at least one token. */
function answerLength(random: () => number, { medianTokens, sigma }: EarlyStop): number {
  const normal = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  return Math.max(1, Math.round(medianTokens * Math.exp(sigma * normal)));
}
