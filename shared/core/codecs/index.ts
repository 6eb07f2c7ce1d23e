import { lmiCodec } from "./lmi.ts";
import { openAiChatCodec, openAiCompletionsCodec } from "./openai.ts";
import { tgiCodec } from "./tgi.ts";
import type { ContainerCodec, ContainerFormat } from "./types.ts";

export { containerFormats, type ContainerCodec, type ContainerFormat, type CountTokens, type GenerationInput, type GenerationOutput, type StreamDecoder } from "./types.ts";
export { finishReasonOf, unexpectedBody } from "./common.ts";

const codecs: Record<ContainerFormat, ContainerCodec> = {
  lmi: lmiCodec,
  tgi: tgiCodec,
  "openai-completions": openAiCompletionsCodec,
  "openai-chat": openAiChatCodec,
};

export function codecFor(format: ContainerFormat): ContainerCodec {
  return codecs[format];
}

/** Whether the format sends chat messages to the container as they are: the model's own template renders them. */
export const takesMessages = (format: ContainerFormat): boolean => format === "openai-chat";
