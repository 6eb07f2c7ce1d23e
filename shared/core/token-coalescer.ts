/**
 * API Gateway's WebSocket frame size quota (32 KB, not adjustable): a PostToConnection message past
 * it must be split into frames of at most that, or the connection closes with code 1009.
 */
export const WEBSOCKET_FRAME_BYTES = 32 * 1024;

/**
 * The least time between two token frames of one job. A model makes a token every 6-30 ms per
 * sequence; a frame per token would be a PostToConnection per token per subscriber, while a reader
 * sees no difference below about 50 ms.
 */
export const TOKEN_FRAME_INTERVAL_MS = 50;

/** The text a frame carries: `index` numbers frames from 0, `tokens` counts the tokens sent so far, these included. */
export type TokenFrame = { readonly index: number; readonly text: string; readonly tokens: number };

/** Bytes of a value written as JSON, as a WebSocket frame carries it. */
export function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value), "utf8");
}

/** Bytes a text adds to a JSON document as a string value: quotes left out, escapes counted. */
export function jsonTextBytes(text: string): number {
  return jsonBytes(text) - 2;
}

/**
 * Gathers a streamed job's text into frames for its subscribers: the first as soon as there is
 * text, then at most one per `intervalMs`, each with all the text that waits, up to `maxTextBytes`
 * once written as a JSON string. A token too long for one frame is split between frames at a
 * character boundary. Pure: the caller says what time it is, and posts what it is given.
 */
export class TokenCoalescer {
  readonly #intervalMs: number;
  readonly #maxTextBytes: number;
  /** Text not sent yet, one piece per token; the first may be the rest of a token already split. */
  #pieces: string[] = [];
  /** The tokens each piece stands for (1, but for text of earlier calls added at once). */
  #pieceTokens: number[] = [];
  #index = 0;
  #tokens = 0;
  #lastSentMs = Number.NEGATIVE_INFINITY;

  constructor(options: { readonly intervalMs: number; readonly maxTextBytes: number }) {
    // The longest character as JSON is a lone surrogate's 6-byte escape: a frame must hold one.
    if (options.maxTextBytes < 6) throw new RangeError(`maxTextBytes: ${options.maxTextBytes} cannot hold a character`);
    this.#intervalMs = options.intervalMs;
    this.#maxTextBytes = options.maxTextBytes;
  }

  /** One token's text, as the engine sent it; or `tokens` tokens' text at once (a resumed generation's text so far). */
  add(text: string, tokens = 1): void {
    this.#pieces.push(text);
    this.#pieceTokens.push(tokens);
  }

  /** When the next frame may go; undefined while no text waits. */
  get dueAtMs(): number | undefined {
    return this.#pieces.length === 0 ? undefined : this.#lastSentMs + this.#intervalMs;
  }

  /** The frame to send at `nowMs`, or undefined when no text waits or the last frame is too recent. */
  take(nowMs: number): TokenFrame | undefined {
    const due = this.dueAtMs;
    if (due === undefined || nowMs < due) return undefined;
    this.#lastSentMs = nowMs;
    return this.#cut();
  }

  /**
   * Every frame still to send, whatever the time: for the end of the stream, where the final event
   * follows at once and holding the rest back would only delay the result.
   */
  drain(): TokenFrame[] {
    const frames: TokenFrame[] = [];
    while (this.#pieces.length > 0) frames.push(this.#cut());
    return frames;
  }

  #cut(): TokenFrame {
    let text = "";
    let bytes = 0;
    for (let piece = this.#pieces[0]; piece !== undefined; piece = this.#pieces[0]) {
      const pieceBytes = jsonTextBytes(piece);
      if (bytes + pieceBytes <= this.#maxTextBytes) {
        text += piece;
        bytes += pieceBytes;
        this.#pieces.shift();
        this.#tokens += this.#pieceTokens.shift() ?? 1;
        continue;
      }
      if (text.length === 0) {
        const [head, rest] = splitAtJsonBytes(piece, this.#maxTextBytes);
        text = head;
        this.#pieces[0] = rest;
      }
      break;
    }
    return { index: this.#index++, text, tokens: this.#tokens };
  }
}

/** The longest start of `text` whose JSON form fits `maxBytes`, cut between characters, and the rest. */
function splitAtJsonBytes(text: string, maxBytes: number): [string, string] {
  let bytes = 0;
  let end = 0;
  // By code point: a surrogate pair stays whole, and a lone surrogate counts as its escape.
  for (const char of text) {
    bytes += jsonTextBytes(char);
    if (bytes > maxBytes) break;
    end += char.length;
  }
  return [text.slice(0, end), text.slice(end)];
}
