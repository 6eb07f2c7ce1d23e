import { codecFor, type CountTokens, type StreamDecoder } from "./codecs/index.ts";
import type { CodecTarget } from "./engine-codec.ts";
import { ModelRejectedError } from "./errors.ts";

export type { StreamDecoder } from "./codecs/index.ts";

/**
 * A decoder for InvokeEndpointWithResponseStream in the component's format (codecs/): LMI's JSON
 * lines, TGI's and OpenAI's server-sent events. A dynamic-batch engine answers a list at once and
 * has no stream.
 */
export function createStreamDecoder(target: CodecTarget, countTokens: CountTokens): StreamDecoder {
  if (target.engine === "lmi-dynamic") throw new ModelRejectedError(`engine ${target.engine} answers a list of prompts at once and cannot stream`);
  return codecFor(target.format).streamDecoder(countTokens);
}
