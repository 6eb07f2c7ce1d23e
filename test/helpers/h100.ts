import { getProfile } from "#shared/core/profiles";
import type { ComponentLimits } from "#shared/core/routes";

/** The default route's component: Llama-2-7B on one H100 (infra/routes.yml). */
export const h100Profile = getProfile("llama2-7b-bf16-h100");
export const h100Limits: ComponentLimits = {
  max_sequences: 128,
  token_budget: 112_000,
  max_prompt_tokens: 3072,
  max_new_tokens: 2048,
  payload_bytes: 6_291_456,
  max_invocation_seconds: 60,
};
