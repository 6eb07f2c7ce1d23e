import { z } from "zod";
import { DEFAULT_INTERACTIVE_MIN_PRIORITY, laneQueueSuffix } from "./lanes.ts";
import { describeRefusal, eventSourceMappingRefusal } from "./event-source-mapping-rules.ts";
import { planPlacement } from "./placement.ts";
import { gpuNames, isProfileName, kvCapacityTokens, profileNames, shippedProfile, type LatencyProfile, type ResolvedProfile } from "./profiles.ts";
import { isProfileFileReference, profileFileSchema, resolveProfileFile, type ProfileFile } from "./profile-file.ts";
import { containerFormats, type ContainerFormat } from "./codecs/index.ts";
import { continuationProblem } from "./continuation.ts";

/**
 * The schema of infra/routes.yml. Parsed once at start-up; every reader (functions, serverless
 * config, the SageMaker emulator) sees the same validated catalog.
 */
const name = z.string().regex(/^[a-zA-Z0-9][a-zA-Z0-9.-]{0,62}$/, "letters, digits, '.' and '-'");
const positiveInt = z.number().int().positive();

/**
 * The container's engine, which fixes how it batches (and its default request format, `format`):
 * - lmi-rolling: LMI (DJL Serving) rolling batch (vLLM, TensorRT-LLM or LMI-dist backend), one
 *   prompt per request, continuous batching;
 * - lmi-dynamic: LMI dynamic batch, a list of prompts per request, run as one static batch;
 * - vllm-openai: a vLLM (or SGLang) container's OpenAI-compatible server through /invocations,
 *   continuous batching;
 * - tgi: Hugging Face TGI, continuous batching.
 */
export const engineModes = ["lmi-rolling", "lmi-dynamic", "vllm-openai", "tgi"] as const;
export type EngineMode = (typeof engineModes)[number];

/** The request formats each engine serves; the first is its default. */
export const engineFormats: Readonly<Record<EngineMode, readonly ContainerFormat[]>> = {
  "lmi-rolling": ["lmi", "openai-chat", "openai-completions"],
  // A list of prompts in one body: LMI's own format only.
  "lmi-dynamic": ["lmi"],
  "vllm-openai": ["openai-completions", "openai-chat"],
  tgi: ["tgi", "openai-chat"],
};

/**
 * The chat templates batchline renders for a text-only format (lmi, tgi, openai-completions), by
 * model family: Llama 2's, Llama 3's, and ChatML (`<|im_start|>role ... <|im_end|>`, Qwen's and
 * many others') for a route that names it. A chat-format component gets the messages as they are.
 */
export const chatTemplateNames = ["llama2", "llama3", "chatml"] as const;
export type ChatTemplateName = (typeof chatTemplateNames)[number];

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

/**
 * SageMaker's names (endpoint, inference component, model): letters, digits and single or
 * repeated hyphens between them, at most 63 characters once deployed with the stage prefix.
 */
export const SAGEMAKER_NAME = /^[a-zA-Z0-9](-*[a-zA-Z0-9])*$/;
export const SAGEMAKER_NAME_MAX_LENGTH = 63;

/**
 * Managed instance scaling of the endpoint's one production variant: SageMaker adds instances
 * (up to max_instance_count) when component copies need room, and removes idle ones down to
 * min_instance_count. 0 lets the endpoint scale in to no instance at all once every component on
 * it has scaled in to zero copies. Both default to instance_count (a fixed fleet).
 */
const endpointSchema = z
  .strictObject({
    instance_type: z.string().min(1),
    /** Instances at creation (the variant's InitialInstanceCount). */
    instance_count: positiveInt,
    gpus_per_instance: positiveInt,
    /** One of the GPUs in shared/core/profiles.ts (h100-80gb, a100-40gb, a100-80gb, a10g-24gb). */
    gpu: z.string().min(1),
    price_per_instance_hour: z.number().nonnegative(),
    min_instance_count: z.number().int().nonnegative().optional(),
    max_instance_count: positiveInt.optional(),
  })
  .transform((e) => ({ ...e, min_instance_count: e.min_instance_count ?? e.instance_count, max_instance_count: e.max_instance_count ?? e.instance_count }));

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

/** SageMaker's bounds of an inference component's startup timeouts, seconds. */
const startupTimeout = z.number().int().min(60).max(3600);

/**
 * What the deployed container serves: the weights (a Hugging Face model id, or an S3 location of
 * uncompressed weights, or of a model.tar.gz) and extra container environment, which overrides
 * what infra/sagemaker.cjs derives from the component (engine, GPUs, limits).
 */
const modelSchema = z
  .strictObject({
    hf_model_id: z.string().regex(/^[\w.-]+\/[\w.-]+$/, "a Hugging Face model id: <organization>/<model>").optional(),
    s3_uri: z.string().regex(/^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](\/.*)?$/, "an S3 location: s3://<bucket>/<prefix>/ or s3://<bucket>/<key>.tar.gz").optional(),
    environment: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "an environment variable name"), z.string()).default({}),
  })
  .refine((m) => (m.hf_model_id === undefined) !== (m.s3_uri === undefined), { message: "give exactly one of hf_model_id or s3_uri" });

/**
 * A shipped profile's name (shared/core/profiles.ts), or a profile file's contents: the routes
 * file names the file (`profile: ./profiles/mine.json`) and readProfileFiles puts its contents here.
 */
const profileSchema = z.unknown().transform((profile, ctx): string | ProfileFile => {
  if (typeof profile === "string") {
    if (!isProfileName(profile)) {
      ctx.addIssue({
        code: "custom",
        message: isProfileFileReference(profile)
          ? `profile file ${profile} was not read: load the routes file with loadRouteCatalog, which reads the files it names`
          : `unknown profile "${profile}": name a shipped one (${profileNames.join(", ")}) or a profile file (./file.json, as batchline calibrate writes)`,
      });
    }
    return profile;
  }
  // Parsed on its own so that a problem names its field (a union would say only "Invalid input").
  const file = profileFileSchema.safeParse(profile);
  if (file.success) return file.data;
  for (const issue of file.error.issues) ctx.addIssue({ code: "custom", path: issue.path, message: issue.message });
  return z.NEVER;
});

/** The profile a component names, resolved; undefined for an unknown name (profileSchema says so). */
function profileOf(profile: string | ProfileFile): ResolvedProfile | undefined {
  if (typeof profile !== "string") return resolveProfileFile(profile);
  return isProfileName(profile) ? shippedProfile(profile) : undefined;
}

const componentSchema = z.strictObject({
  endpoint: name,
  profile: profileSchema,
  engine: z.enum(engineModes),
  /** The request format the container is called with; default: the engine's own (engineFormats). */
  format: z.enum(containerFormats).optional(),
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
  /** The deployed model (infra/sagemaker.cjs needs it; the embedded stack's emulator does not). */
  model: modelSchema.optional(),
  /** Host memory SageMaker reserves for one copy (MinMemoryRequiredInMb); default: the weights plus 8 GiB. */
  min_memory_mb: positiveInt.optional(),
  /** Seconds a new copy may take to download its weights (ModelDataDownloadTimeoutInSeconds); default from warmup_seconds. */
  model_download_timeout_seconds: startupTimeout.optional(),
  /** Seconds a new copy may take to pass its first health check (ContainerStartupHealthCheckTimeoutInSeconds); default from warmup_seconds. */
  startup_health_check_timeout_seconds: startupTimeout.optional(),
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
  /** The template batchline renders chat with for text-only formats; default: the tokenizer's family. */
  chat_template: z.enum(chatTemplateNames).optional(),
  components: z.array(name).min(1),
  window: windowSchema,
  max_receive_count: positiveInt.max(1000),
  retention_days: positiveInt,
  /** Which jobs go to the interactive lane's queue (shared/core/lanes.ts). */
  lanes: z
    .strictObject({ interactive_min_priority: z.number().int().min(0).max(9).default(DEFAULT_INTERACTIVE_MIN_PRIORITY) })
    .default({ interactive_min_priority: DEFAULT_INTERACTIVE_MIN_PRIORITY }),
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
      const profile = profileOf(component.profile);
      if (!profile) continue;
      const { gpu } = profile;
      if (endpoint && endpoint.gpu !== gpu) {
        ctx.addIssue({ code: "custom", path: ["components", id, "profile"], message: `profile ${profile.latency.name} is for ${gpu}, endpoint ${component.endpoint} has ${endpoint.gpu}` });
      }
      const room = kvCapacityTokens(profile, component.accelerators_per_copy);
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
    deploymentChecks(file, ctx);
    for (const [id, route] of Object.entries(file.routes)) {
      // A route's interactive lane is its queue name plus this suffix: another route must not own that name.
      const taken = `${id}${laneQueueSuffix("interactive")}`;
      if (file.routes[taken]) ctx.addIssue({ code: "custom", path: ["routes", taken], message: `route name ${taken} is the interactive lane's queue of route ${id}` });
      route.components.forEach((component, i) => {
        if (!file.components[component]) {
          ctx.addIssue({ code: "custom", path: ["routes", id, "components", i], message: `unknown component "${component}"` });
        }
      });
      // Every batcher invocation feeds all of the route's copies and tops its delivery up itself:
      // pollers beyond one per copy would only split the arrivals into smaller deliveries.
      const copies = route.components.reduce((sum, c) => {
        const component = file.components[c];
        return sum + (component?.autoscaling?.max_copies ?? component?.copies ?? 0);
      }, 0);
      const most = Math.max(2, copies);
      if (route.window.maximum_concurrency > most) {
        ctx.addIssue({
          code: "custom",
          path: ["routes", id, "window", "maximum_concurrency"],
          message: `${route.window.maximum_concurrency} pollers for ${copies} ${copies === 1 ? "copy" : "copies"} would split deliveries across idle pollers; at most ${most} (one per copy, and AWS's minimum of 2)`,
        });
      }
    }
  });

/**
 * What SageMaker and Application Auto Scaling would refuse, or could never do, with the
 * endpoints and components as written: checked here so that the template generator
 * (infra/sagemaker.cjs) and the embedded stack refuse the same routes file.
 */
function deploymentChecks(file: RoutesFileInput, ctx: z.RefinementCtx): void {
  for (const [kind, names] of [["endpoints", Object.keys(file.endpoints)], ["components", Object.keys(file.components)]] as const) {
    for (const id of names) {
      if (!SAGEMAKER_NAME.test(id)) {
        ctx.addIssue({ code: "custom", path: [kind, id], message: `"${id}" is not a SageMaker name: letters, digits and hyphens between them (no '.', no leading or trailing '-')` });
      }
    }
  }
  for (const [endpointName, endpoint] of Object.entries(file.endpoints)) {
    const { min_instance_count: min, max_instance_count: max, instance_count: initial } = endpoint;
    if (min > initial || initial > max) {
      ctx.addIssue({ code: "custom", path: ["endpoints", endpointName], message: `instance_count ${initial} must lie within min_instance_count ${min} and max_instance_count ${max} (managed instance scaling)` });
    }
    const hosted = Object.entries(file.components).filter(([, c]) => c.endpoint === endpointName);
    if (min === 0) {
      // The endpoint scales in to zero instances only when no copy is left on it: every component
      // must be registered with Application Auto Scaling at a minimum of zero copies.
      const keepers = hosted.filter(([, c]) => (c.autoscaling?.min_copies ?? c.copies) > 0).map(([id, c]) => `${id} (${c.autoscaling ? `autoscaling.min_copies ${c.autoscaling.min_copies}` : `${c.copies} fixed ${c.copies === 1 ? "copy" : "copies"}, no autoscaling`})`);
      if (keepers.length > 0) {
        ctx.addIssue({ code: "custom", path: ["endpoints", endpointName, "min_instance_count"], message: `min_instance_count 0 is never reached: ${keepers.join(", ")} always keeps a copy on an instance; give those components autoscaling with min_copies 0, or keep min_instance_count at 1 or more` });
      }
    }
    for (const [id, component] of hosted) {
      if (component.accelerators_per_copy > endpoint.gpus_per_instance) {
        ctx.addIssue({ code: "custom", path: ["components", id, "accelerators_per_copy"], message: `a copy needs ${component.accelerators_per_copy} GPUs on one instance; ${endpoint.instance_type} instances of endpoint ${endpointName} have ${endpoint.gpus_per_instance}` });
        continue;
      }
      const most = component.autoscaling?.max_copies ?? component.copies;
      const plan = planPlacement({ instance_count: max, gpus_per_instance: endpoint.gpus_per_instance }, [{ component: id, gpusPerCopy: component.accelerators_per_copy, copies: most }]);
      if (!plan.ok) {
        ctx.addIssue({ code: "custom", path: ["components", id, component.autoscaling ? "autoscaling" : "copies"], message: `${most} copies of ${component.accelerators_per_copy} GPUs never fit endpoint ${endpointName} at its max_instance_count ${max}: ${plan.message}` });
      }
    }
  }
}

type RoutesFileInput = {
  readonly endpoints: Record<string, z.output<typeof endpointSchema>>;
  readonly components: Record<string, z.output<typeof componentSchema>>;
};

export type RoutesFile = z.infer<typeof routesFileSchema>;
export type EndpointSpec = RoutesFile["endpoints"][string];
export type ComponentSpec = RoutesFile["components"][string];
export type ComponentLimits = ComponentSpec["limits"];
export type WindowSettings = RoutesFile["routes"][string]["window"];
export type AutoscalingSettings = NonNullable<ComponentSpec["autoscaling"]>;

/**
 * A component with its name, endpoint, request format, KV admission and latency profile resolved.
 * `profile` is the profile's name (a shipped one's, or a profile file's `name`); `latency` its
 * numbers, which every reader of the component's timing uses.
 */
export type Component = Omit<ComponentSpec, "profile"> & {
  readonly profile: string;
  readonly latency: LatencyProfile;
  readonly hardware: Omit<ResolvedProfile, "latency">;
  readonly name: string;
  readonly endpointName: string;
  readonly endpointSpec: EndpointSpec;
  readonly kv_admission: KvAdmission;
  readonly format: ContainerFormat;
};

/** The KV admission a component's engine uses when the routes file names none. */
export function defaultKvAdmission(engine: EngineMode): KvAdmission {
  return engine === "vllm-openai" ? "paged" : "reserve";
}

function formatOf(componentName: string, spec: ComponentSpec): ContainerFormat {
  const served = engineFormats[spec.engine];
  const format = spec.format ?? served[0] ?? "lmi";
  if (!served.includes(format)) throw new RoutesFileError(`component ${componentName}: engine ${spec.engine} does not serve format ${format}; it serves ${served.join(", ")}`);
  return format;
}

/** A route with its components and chat template resolved: what the pipeline works with. */
export type Route = Omit<RoutesFile["routes"][string], "components" | "chat_template"> & {
  readonly name: string;
  readonly chat_template: ChatTemplateName;
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

/**
 * The routes file with the profile files its components name read in: `read` gets the name as
 * written (relative to the routes file) and returns the file's text. A file that cannot be read or
 * is not JSON is a RoutesFileError naming the component and the file; its contents are checked
 * with the rest of the routes file.
 */
export function readProfileFiles(raw: unknown, read: (reference: string) => string): unknown {
  if (!isRecord(raw) || !isRecord(raw.components)) return raw;
  const components = Object.fromEntries(
    Object.entries(raw.components).map(([id, spec]) => {
      if (!isRecord(spec) || typeof spec.profile !== "string" || !isProfileFileReference(spec.profile)) return [id, spec];
      const reference = spec.profile;
      let text: string;
      try {
        text = read(reference);
      } catch (error) {
        throw new RoutesFileError(`components.${id}.profile: cannot read profile file ${reference}: ${error instanceof Error ? error.message : String(error)}`);
      }
      try {
        return [id, { ...spec, profile: JSON.parse(text) as unknown }];
      } catch (error) {
        throw new RoutesFileError(`components.${id}.profile: profile file ${reference} is not JSON: ${error instanceof Error ? error.message : String(error)}`);
      }
    }),
  );
  return { ...raw, components };
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

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
    const resolved = profileOf(spec.profile);
    if (!resolved) throw new RoutesFileError(`component ${componentName}: unknown profile ${JSON.stringify(spec.profile)}`);
    const { latency, ...hardware } = resolved;
    const component: Component = {
      ...spec, profile: latency.name, latency, hardware, name: componentName, endpointName: spec.endpoint, endpointSpec, kv_admission, format: formatOf(componentName, spec),
    };
    const problem = continuationProblem(component);
    if (problem) throw new RoutesFileError(`component ${componentName}: ${problem}`);
    components.set(componentName, component);
  }
  const routes = new Map<string, Route>();
  for (const [routeName, spec] of Object.entries(file.routes)) {
    const resolved = spec.components.map((c) => {
      const component = components.get(c);
      if (!component) throw new RoutesFileError(`route ${routeName}: unknown component ${c}`);
      return component;
    });
    routes.set(routeName, { ...spec, name: routeName, chat_template: spec.chat_template ?? spec.tokenizer, components: resolved, limits: tightestLimits(resolved) });
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
export function gpuHourPrice(component: Pick<Component, "endpointSpec">): number {
  const spec = component.endpointSpec;
  return spec.price_per_instance_hour / spec.gpus_per_instance;
}

/** What a deployed copy of a component asks SageMaker for, with the defaults resolved. */
export type DeploymentSettings = {
  readonly minMemoryMb: number;
  readonly modelDataDownloadTimeoutSeconds: number;
  readonly containerStartupHealthCheckTimeoutSeconds: number;
};

/** Host memory a copy needs beside its weights: the serving process, tokenizer, CUDA context. */
const SERVER_OVERHEAD_MB = 8 * 1024;

/**
 * The inference component's resource requirements and startup timeouts. Memory defaults to the
 * weights (they pass through host memory on load) plus 8 GiB, rounded up to whole GiB; each
 * timeout to twice warmup_seconds, the start-up a copy is expected to take, within SageMaker's
 * 60-3600 s.
 */
export function deploymentSettings(component: Component): DeploymentSettings {
  const weightsMb = component.hardware.footprint.weightBytes / 2 ** 20;
  const minMemoryMb = component.min_memory_mb ?? Math.ceil((weightsMb + SERVER_OVERHEAD_MB) / 1024) * 1024;
  const fromWarmup = Math.min(3600, Math.max(60, Math.ceil(2 * component.warmup_seconds)));
  return {
    minMemoryMb,
    modelDataDownloadTimeoutSeconds: component.model_download_timeout_seconds ?? fromWarmup,
    containerStartupHealthCheckTimeoutSeconds: component.startup_health_check_timeout_seconds ?? fromWarmup,
  };
}
