import { z } from "zod";
import { describeRefusal, eventSourceMappingRefusal } from "./event-source-mapping-rules.ts";
import { planPlacement } from "./placement.ts";
import { gpuNames, kvCapacityTokens, profileHardware, profileNames } from "./profiles.ts";

/**
 * The schema of infra/routes.yml. Parsed once at start-up; every reader (functions, serverless
 * config, the SageMaker emulator) sees the same validated catalog.
 */
const name = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9.-]{0,62}$/, "letters, digits, '.' and '-'");
const positiveInt = z.number().int().positive();

/**
 * The container's engine, which fixes the request body and how it batches:
 * - lmi-rolling: LMI (DJL Serving) rolling batch, one prompt per request, continuous batching;
 * - lmi-dynamic: LMI dynamic batch, a list of prompts per request, run as one static batch;
 * - vllm-openai: vLLM's OpenAI-compatible completions body through /invocations, continuous batching.
 */
export const engineModes = ["lmi-rolling", "lmi-dynamic", "vllm-openai"] as const;
export type EngineMode = (typeof engineModes)[number];

/**
 * How a continuous-batching engine admits sequences to its KV cache: `reserve` holds prompt +
 * max new tokens for each sequence from the start (TGI's max_batch_total_tokens); `paged` holds
 * only the tokens a sequence has, and preempts the newest sequence when the cache runs out
 * (vLLM's PagedAttention). Default: paged for vllm-openai, reserve otherwise.
 */
export const kvAdmissionModes = ["reserve", "paged"] as const;
export type KvAdmission = (typeof kvAdmissionModes)[number];

export const tokenizerNames = ["llama2", "llama3"] as const;
export type TokenizerName = (typeof tokenizerNames)[number];

const endpointSchema = z.strictObject({
  instance_type: z.string().min(1),
  instance_count: positiveInt,
  gpus_per_instance: positiveInt,
  /** One of the GPUs in shared/core/profiles.ts (h100-80gb, a100-40gb, a100-80gb, a10g-24gb). */
  gpu: z.string().min(1),
  price_per_instance_hour: z.number().nonnegative(),
});

const limitsSchema = z.strictObject({
  max_sequences: positiveInt,
  token_budget: positiveInt,
  max_prompt_tokens: positiveInt,
  max_new_tokens: positiveInt,
  payload_bytes: positiveInt.max(6 * 1024 * 1024),
  max_invocation_seconds: positiveInt.max(60),
});

/**
 * Application Auto Scaling of a component's copies (the scalable dimension
 * sagemaker:inference-component:DesiredCopyCount), the same in the template and on the embedded
 * stack: target tracking on ConcurrentRequestsPerCopy, and a step-scaling policy on the
 * NoCapacityInvocationFailures alarm that starts a copy when the component is at zero.
 */
const autoscalingSchema = z
  .strictObject({
    /** 0 lets the component scale in to zero copies after the target tracking's scale-in period. */
    min_copies: z.number().int().nonnegative(),
    max_copies: positiveInt,
    /** Target tracking's target: requests in flight or queued in the container, per copy. */
    target_concurrent_requests_per_copy: z.number().positive(),
    /** Seconds after a scale-out before target tracking scales out again. */
    scale_out_cooldown_seconds: z.number().int().nonnegative(),
    /** Seconds after any scaling activity before target tracking scales in. */
    scale_in_cooldown_seconds: z.number().int().nonnegative(),
  })
  .refine((a) => a.min_copies <= a.max_copies, { message: "min_copies must not exceed max_copies" });

const componentSchema = z.strictObject({
  endpoint: name,
  profile: z.enum(profileNames),
  engine: z.enum(engineModes),
  accelerators_per_copy: positiveInt,
  copies: z.number().int().nonnegative(),
  limits: limitsSchema,
  kv_admission: z.enum(kvAdmissionModes).optional(),
  /** Requests the container queues beyond those it runs before it refuses more (LMI's job_queue_size). */
  max_queue_length: positiveInt.default(1000),
  /** Time a new copy takes to start (instance, image, weights) before it serves: scale-out and scale from zero. */
  warmup_seconds: z.number().nonnegative().default(300),
  /** Absent: the component keeps its `copies` (a fixed fleet). */
  autoscaling: autoscalingSchema.optional(),
});

/**
 * The route's event source mapping (BatchSize, MaximumBatchingWindowInSeconds,
 * ScalingConfig.MaximumConcurrency): refused on load with AWS's own error, as `osls deploy`
 * would be (shared/core/event-source-mapping-rules.ts).
 */
const windowSchema = z
  .strictObject({
    batch_size: z.number().int(),
    batching_window_seconds: z.number().int(),
    maximum_concurrency: z.number().int(),
    /** The longest the batcher holds a job for a fuller static batch, until ops change it live. */
    max_wait_ms: z.number().int().min(0).max(60_000).default(1000),
  })
  .superRefine((window, ctx) => {
    const refusal = eventSourceMappingRefusal({
      BatchSize: window.batch_size,
      MaximumBatchingWindowInSeconds: window.batching_window_seconds,
      ScalingConfig: { MaximumConcurrency: window.maximum_concurrency },
      FunctionResponseTypes: ["ReportBatchItemFailures"],
    });
    if (refusal) ctx.addIssue({ code: "custom", message: `AWS refuses this event source mapping: ${describeRefusal(refusal)}` });
  });

const routeSchema = z.strictObject({
  description: z.string().default(""),
  tokenizer: z.enum(tokenizerNames),
  components: z.array(name).min(1),
  window: windowSchema,
  max_receive_count: positiveInt.max(1000),
  retention_days: positiveInt,
});

export const routesFileSchema = z
  .strictObject({
    endpoints: z.record(name, endpointSchema),
    components: z.record(name, componentSchema),
    routes: z.record(name, routeSchema),
  })
  .superRefine((file, ctx) => {
    for (const [id, component] of Object.entries(file.components)) {
      const endpoint = file.endpoints[component.endpoint];
      if (!endpoint) {
        ctx.addIssue({ code: "custom", path: ["components", id, "endpoint"], message: `unknown endpoint "${component.endpoint}"` });
      }
      const scaling = component.autoscaling;
      if (scaling && (component.copies < scaling.min_copies || component.copies > scaling.max_copies)) {
        ctx.addIssue({ code: "custom", path: ["components", id, "copies"], message: `${component.copies} copies at start is outside autoscaling's ${scaling.min_copies}-${scaling.max_copies}` });
      }
      if (component.limits.max_prompt_tokens + component.limits.max_new_tokens > component.limits.token_budget) {
        ctx.addIssue({ code: "custom", path: ["components", id, "limits"], message: "max_prompt_tokens + max_new_tokens must fit in token_budget" });
      }
    }
    for (const [id, component] of Object.entries(file.components)) {
      const endpoint = file.endpoints[component.endpoint];
      const { gpu } = profileHardware(component.profile);
      if (endpoint && endpoint.gpu !== gpu) {
        ctx.addIssue({ code: "custom", path: ["components", id, "profile"], message: `profile ${component.profile} is for ${gpu}, endpoint ${component.endpoint} has ${endpoint.gpu}` });
      }
      const room = kvCapacityTokens(component.profile, component.accelerators_per_copy);
      if (component.limits.token_budget > room) {
        ctx.addIssue({ code: "custom", path: ["components", id, "limits", "token_budget"], message: `${component.limits.token_budget} tokens is over the ${room}-token KV cache of ${component.accelerators_per_copy} ${gpu}` });
      }
    }
    for (const [endpointName, endpoint] of Object.entries(file.endpoints)) {
      if (!(gpuNames as readonly string[]).includes(endpoint.gpu)) {
        ctx.addIssue({ code: "custom", path: ["endpoints", endpointName, "gpu"], message: `unknown GPU "${endpoint.gpu}"; known: ${gpuNames.join(", ")}` });
      }
      const hosted = Object.entries(file.components).filter(([, c]) => c.endpoint === endpointName);
      const gpusUsed = hosted.reduce((sum, [, c]) => sum + c.copies * c.accelerators_per_copy, 0);
      const gpus = endpoint.instance_count * endpoint.gpus_per_instance;
      const plan = planPlacement(
        endpoint,
        hosted.map(([id, c]) => ({ component: id, gpusPerCopy: c.accelerators_per_copy, copies: c.copies })),
      );
      if (gpusUsed > gpus) {
        ctx.addIssue({ code: "custom", path: ["endpoints", endpointName], message: `components need ${gpusUsed} GPUs, the endpoint has ${gpus}` });
      } else if (!plan.ok) {
        ctx.addIssue({ code: "custom", path: ["endpoints", endpointName], message: `components do not fit its instances: ${plan.message}` });
      }
    }
    for (const [id, route] of Object.entries(file.routes)) {
      route.components.forEach((component, i) => {
        if (!file.components[component]) {
          ctx.addIssue({ code: "custom", path: ["routes", id, "components", i], message: `unknown component "${component}"` });
        }
      });
      // Every batcher invocation feeds all of the route's copies and tops its window up itself:
      // pollers beyond one per copy would only split the arrivals into smaller windows.
      const copies = route.components.reduce((sum, c) => {
        const component = file.components[c];
        return sum + (component?.autoscaling?.max_copies ?? component?.copies ?? 0);
      }, 0);
      const most = Math.max(2, copies);
      if (route.window.maximum_concurrency > most) {
        ctx.addIssue({
          code: "custom",
          path: ["routes", id, "window", "maximum_concurrency"],
          message: `${route.window.maximum_concurrency} pollers for ${copies} ${copies === 1 ? "copy" : "copies"} would split windows across idle pollers; at most ${most} (one per copy, and AWS's minimum of 2)`,
        });
      }
    }
  });

export type RoutesFile = z.infer<typeof routesFileSchema>;
export type EndpointSpec = RoutesFile["endpoints"][string];
export type ComponentSpec = RoutesFile["components"][string];
export type ComponentLimits = ComponentSpec["limits"];
export type WindowSettings = RoutesFile["routes"][string]["window"];
export type AutoscalingSettings = NonNullable<ComponentSpec["autoscaling"]>;

/** A component with its name, endpoint and KV admission resolved. */
export type Component = ComponentSpec & {
  readonly name: string;
  readonly endpointName: string;
  readonly endpointSpec: EndpointSpec;
  readonly kv_admission: KvAdmission;
};

/** The KV admission a component's engine uses when the routes file names none. */
export function defaultKvAdmission(engine: EngineMode): KvAdmission {
  return engine === "vllm-openai" ? "paged" : "reserve";
}

/** A route with its components resolved: what the pipeline works with. */
export type Route = Omit<RoutesFile["routes"][string], "components"> & {
  readonly name: string;
  readonly components: readonly Component[];
  /** The tightest limits over the route's components: what any one job must fit. */
  readonly limits: ComponentLimits;
};

export type RouteCatalog = {
  readonly routes: ReadonlyMap<string, Route>;
  readonly components: ReadonlyMap<string, Component>;
  readonly endpoints: ReadonlyMap<string, EndpointSpec>;
};

export class RoutesFileError extends Error {
  override readonly name = "RoutesFileError";
}

/** Validates a parsed routes file and resolves its references. */
export function buildRouteCatalog(raw: unknown): RouteCatalog {
  const parsed = routesFileSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`);
    throw new RoutesFileError(`invalid routes file: ${problems.join("; ")}`);
  }
  const file = parsed.data;
  const components = new Map<string, Component>();
  for (const [componentName, spec] of Object.entries(file.components)) {
    const endpointSpec = file.endpoints[spec.endpoint];
    if (!endpointSpec) throw new RoutesFileError(`component ${componentName}: unknown endpoint ${spec.endpoint}`);
    const kv_admission = spec.kv_admission ?? defaultKvAdmission(spec.engine);
    components.set(componentName, { ...spec, name: componentName, endpointName: spec.endpoint, endpointSpec, kv_admission });
  }
  const routes = new Map<string, Route>();
  for (const [routeName, spec] of Object.entries(file.routes)) {
    const resolved = spec.components.map((c) => {
      const component = components.get(c);
      if (!component) throw new RoutesFileError(`route ${routeName}: unknown component ${c}`);
      return component;
    });
    routes.set(routeName, { ...spec, name: routeName, components: resolved, limits: tightestLimits(resolved) });
  }
  return { routes, components, endpoints: new Map(Object.entries(file.endpoints)) };
}

function tightestLimits(components: readonly Component[]): ComponentLimits {
  const pick = (key: keyof ComponentLimits) => Math.min(...components.map((c) => c.limits[key]));
  return {
    max_sequences: pick("max_sequences"),
    token_budget: pick("token_budget"),
    max_prompt_tokens: pick("max_prompt_tokens"),
    max_new_tokens: pick("max_new_tokens"),
    payload_bytes: pick("payload_bytes"),
    max_invocation_seconds: pick("max_invocation_seconds"),
  };
}

/** Price of one GPU-hour of a component's endpoint, for cost per token. */
export function gpuHourPrice(component: Component): number {
  const spec = component.endpointSpec;
  return spec.price_per_instance_hour / spec.gpus_per_instance;
}
