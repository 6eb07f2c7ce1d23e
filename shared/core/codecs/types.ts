import type { ChatMessage } from "../prompt.ts";

/**
 * The request and response format a container speaks through InvokeEndpoint (routes.yml's
 * component `format`):
 * - `lmi`: LMI (DJL Serving) `{inputs, parameters}` → `{generated_text, details}`, jsonlines when
 *   streamed; its rolling batch (vLLM, TensorRT-LLM, LMI-dist backends) and dynamic batch alike;
 * - `tgi`: Hugging Face TGI `{inputs, parameters, stream?}` → `[{generated_text, details}]`,
 *   server-sent events when streamed;
 * - `openai-completions`: OpenAI completions `{prompt, max_tokens, ...}` (vLLM, SGLang);
 * - `openai-chat`: OpenAI chat completions `{messages, max_tokens, ...}`: the container applies
 *   the model's own chat template (every SageMaker endpoint answers it since 2026).
 */
export const containerFormats = ["lmi", "tgi", "openai-completions", "openai-chat"] as const;
export type ContainerFormat = (typeof containerFormats)[number];

/** What one prompt needs from the engine. `prompt` is the text (messages rendered); `messages` the chat as the client sent it. */
export type GenerationInput = {
  readonly prompt: string;
  readonly messages?: readonly ChatMessage[] | undefined;
  readonly max_new_tokens: number;
  readonly temperature?: number | undefined;
  readonly top_p?: number | undefined;
  readonly stop?: string | readonly string[] | undefined;
  readonly seed?: number | undefined;
  /**
   * A chat format only: the last of `messages` is the assistant's text so far, for the engine to go
   * on within that turn (a generation continued over several calls, core/continuation.ts).
   */
  readonly continue_final_message?: boolean | undefined;
};

export type GenerationOutput = { readonly text: string; readonly completion_tokens: number; readonly finish_reason: "length" | "stop" };

/** Reads one prompt's streamed answer as its PayloadParts arrive; a part may end anywhere, even within a UTF-8 character. */
export type StreamDecoder = {
  /** The text of each piece the bytes complete, in order. */
  push(bytes: Uint8Array): string[];
  /** The whole generation, once the stream has ended. */
  end(): GenerationOutput;
};

export type CountTokens = (text: string) => number;

/** One container format: its request bodies, its answers whole and streamed, and its error bodies. */
export type ContainerCodec = {
  readonly format: ContainerFormat;
  /** One body per prompt, or with `list` (LMI's dynamic batch) one body for them all. */
  encode(inputs: readonly GenerationInput[], options: { readonly stream: boolean; readonly list: boolean }): string[];
  /** One output per prompt of the body (`list`: a body encoded with `list`); a body not in the format is the model's fault (ModelRejectedError). */
  decode(body: string, expected: number, countTokens: CountTokens, options: { readonly list: boolean }): GenerationOutput[];
  streamDecoder(countTokens: CountTokens): StreamDecoder;
  /** The container's own words in an error body it answered (SageMaker's OriginalMessage), if it has that shape. */
  errorMessage(body: string): string | undefined;
};
