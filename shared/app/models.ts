import type { RouteCatalog } from "../core/routes.ts";

/** GET /v1/models: each route with where it runs and what fits in it. */
export function describeModels(catalog: RouteCatalog) {
  return [...catalog.routes.values()].map((route) => ({
    model: route.name,
    description: route.description,
    tokenizer: route.tokenizer,
    limits: {
      max_prompt_tokens: route.limits.max_prompt_tokens,
      max_tokens: route.limits.max_new_tokens,
      max_sequences: route.limits.max_sequences,
      token_budget: route.limits.token_budget,
      payload_bytes: route.limits.payload_bytes,
      max_invocation_seconds: route.limits.max_invocation_seconds,
    },
    window: route.window,
    inference_components: route.components.map((c) => ({
      name: c.name,
      endpoint: c.endpointName,
      engine: c.engine,
      copies: c.copies,
      accelerators_per_copy: c.accelerators_per_copy,
      instance_type: c.endpointSpec.instance_type,
      limits: c.limits,
    })),
  }));
}
