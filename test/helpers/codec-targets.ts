import type { CodecTarget } from "#shared/core/engine-codec";

/** Each engine with its default format (routes.ts engineFormats), as codec tests name them. */
export const codecTarget = {
  "lmi-rolling": { engine: "lmi-rolling", format: "lmi" },
  "lmi-dynamic": { engine: "lmi-dynamic", format: "lmi" },
  "vllm-openai": { engine: "vllm-openai", format: "openai-completions" },
  tgi: { engine: "tgi", format: "tgi" },
} as const satisfies Record<string, CodecTarget>;
