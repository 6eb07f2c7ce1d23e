import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";
import { planPlacement } from "#shared/core/placement";
import { buildRouteCatalog, deploymentSettings, RoutesFileError } from "#shared/core/routes";
import { profileFileOf } from "#shared/core/profile-file";
import { shippedProfile } from "#shared/core/profiles";

/** infra/routes.yml as parsed YAML, untyped: each test reaches in to change one value. */
const routesFile = (): any => parseYaml(readFileSync("infra/routes.yml", "utf8"));

function problemOf(raw: unknown): string {
  try {
    buildRouteCatalog(raw);
  } catch (error) {
    if (error instanceof RoutesFileError) return error.message;
    throw error;
  }
  throw new Error("expected a RoutesFileError");
}

describe("planPlacement", () => {
  it("puts each copy on the instance with the most free GPUs, on its lowest free GPUs", () => {
    // Act
    const plan = planPlacement({ instance_count: 2, gpus_per_instance: 4 }, [
      { component: "a", gpusPerCopy: 2, copies: 3 },
      { component: "b", gpusPerCopy: 1, copies: 2 },
    ]);

    // Assess
    expect(plan).toEqual({
      ok: true,
      copies: new Map([
        ["a", [{ instance: 0, gpus: [0, 1] }, { instance: 1, gpus: [0, 1] }, { instance: 0, gpus: [2, 3] }]],
        ["b", [{ instance: 1, gpus: [2] }, { instance: 1, gpus: [3] }]],
      ]),
    });
  });

  it("places the copies that need the most GPUs first", () => {
    // Act
    const plan = planPlacement({ instance_count: 2, gpus_per_instance: 4 }, [
      { component: "small", gpusPerCopy: 1, copies: 2 },
      { component: "big", gpusPerCopy: 4, copies: 1 },
    ]);

    // Assess
    expect(plan.ok && [...plan.copies]).toEqual([
      ["small", [{ instance: 1, gpus: [0] }, { instance: 1, gpus: [1] }]],
      ["big", [{ instance: 0, gpus: [0, 1, 2, 3] }]],
    ]);
  });

  it("places around the copies already running", () => {
    // Act
    const plan = planPlacement({ instance_count: 1, gpus_per_instance: 4 }, [{ component: "a", gpusPerCopy: 1, copies: 1 }], [
      { instance: 0, gpus: [0, 2] },
    ]);

    // Assess
    expect(plan).toEqual({ ok: true, copies: new Map([["a", [{ instance: 0, gpus: [1] }]]]) });
  });

  it("refuses a copy that no single instance has room for, though the GPUs add up", () => {
    // Act
    const plan = planPlacement({ instance_count: 2, gpus_per_instance: 8 }, [{ component: "big", gpusPerCopy: 5, copies: 3 }]);

    // Assess
    expect(plan).toEqual({ ok: false, message: "copy 3 of big needs 5 GPUs on one instance; free GPUs per instance: [3, 3]" });
  });
});

describe("buildRouteCatalog", () => {
  it("loads infra/routes.yml: three models sharing one 8-GPU endpoint", () => {
    // Act
    const catalog = buildRouteCatalog(routesFile());

    // Assess
    const components = [...catalog.components.values()];
    expect(new Set(components.map((c) => c.endpointName)).size).toBe(1);
    expect(components.map((c) => [c.name, c.engine, c.kv_admission])).toEqual([
      ["llama-2-7b-ic", "lmi-rolling", "reserve"],
      ["llama-3-8b-ic", "vllm-openai", "paged"],
      ["llama-3-1b-ic", "lmi-rolling", "paged"],
    ]);
    expect(catalog.routes.get("llama-3-8b")?.tokenizer).toBe("llama3");
  });

  it("fills in the optional component settings", () => {
    // Prepare
    const raw = routesFile();
    raw.components["llama-2-7b-ic"].engine = "vllm-openai";

    // Act
    const component = buildRouteCatalog(raw).components.get("llama-2-7b-ic");

    // Assess
    expect(component).toMatchObject({ kv_admission: "paged", max_queue_length: 1000, warmup_seconds: 300 });
  });

  it.each([
    {
      problem: "more GPUs than the endpoint has",
      change: (raw: any) => (raw.components["llama-3-8b-ic"].copies = 7),
      says: "endpoints.batchline-h100: components need 9 GPUs, the endpoint has 8",
    },
    {
      problem: "copies that do not fit one instance each",
      change: (raw: any) => {
        raw.endpoints["batchline-h100"] = { ...raw.endpoints["batchline-h100"], instance_count: 2, gpus_per_instance: 4 };
        raw.components["llama-3-8b-ic"].accelerators_per_copy = 3;
        raw.components["llama-2-7b-ic"].accelerators_per_copy = 2;
        raw.components["llama-3-1b-ic"].copies = 0;
      },
      says: "components do not fit its instances: copy 1 of llama-2-7b-ic needs 2 GPUs on one instance; free GPUs per instance: [1, 1]",
    },
    {
      problem: "a profile of another GPU",
      change: (raw: any) => (raw.components["llama-2-7b-ic"].profile = "llama2-7b-bf16-a10g"),
      says: "components.llama-2-7b-ic.profile: profile llama2-7b-bf16-a10g is for a10g-24gb, endpoint batchline-h100 has h100-80gb",
    },
    {
      problem: "an unknown profile name",
      change: (raw: any) => (raw.components["llama-2-7b-ic"].profile = "llama2-7b-bf16-tpu"),
      says: 'components.llama-2-7b-ic.profile: unknown profile "llama2-7b-bf16-tpu": name a shipped one',
    },
    {
      problem: "a profile file with a negative decode step",
      change: (raw: any) => (raw.components["llama-2-7b-ic"].profile = { ...profileFileOf(shippedProfile("llama2-7b-bf16-h100")), latency: { ...profileFileOf(shippedProfile("llama2-7b-bf16-h100")).latency, decode_base_ms: -1 } }),
      says: "components.llama-2-7b-ic.profile.latency.decode_base_ms",
    },
    {
      problem: "a KV budget over the GPU's memory",
      change: (raw: any) => (raw.components["llama-2-7b-ic"].limits.token_budget = 150_000),
      says: "150000 tokens is over the 112000-token KV cache of 1 h100-80gb",
    },
    {
      problem: "an unknown GPU",
      change: (raw: any) => (raw.endpoints["batchline-h100"].gpu = "tpu-v5"),
      says: 'unknown GPU "tpu-v5"',
    },
    {
      problem: "more pollers than the route has copies",
      change: (raw: any) => (raw.routes["llama-3-8b"].window.maximum_concurrency = 3),
      says: "routes.llama-3-8b.window.maximum_concurrency: 3 pollers for 2 copies would split deliveries across idle pollers; at most 2",
    },
    {
      problem: "an unknown KV admission",
      change: (raw: any) => (raw.components["llama-2-7b-ic"].kv_admission = "greedy"),
      says: "components.llama-2-7b-ic.kv_admission",
    },
  ])("rejects $problem", ({ change, says }) => {
    // Prepare
    const raw = routesFile();
    change(raw);

    // Act
    const message = problemOf(raw);

    // Assess
    expect(message).toContain(says);
  });

  it("gives a copy on several GPUs the KV room of all of them", () => {
    // Prepare
    const raw = routesFile();
    raw.components["llama-2-7b-ic"].accelerators_per_copy = 2;
    raw.components["llama-2-7b-ic"].limits.token_budget = 200_000;

    // Act & Assess
    expect(buildRouteCatalog(raw).components.get("llama-2-7b-ic")?.limits.token_budget).toBe(200_000);
  });
});

describe("buildRouteCatalog: container formats and chat templates", () => {
  it("calls each engine in its own format unless the component names another it serves", () => {
    const raw = routesFile();
    raw.components["llama-2-7b-ic"].engine = "tgi";
    raw.components["llama-3-1b-ic"].format = "openai-chat";
    // LMI's chat cannot continue a generation: its longest must fit one call.
    raw.components["llama-3-1b-ic"].limits.max_new_tokens = 1_024;
    const catalog = buildRouteCatalog(raw);
    expect(catalog.components.get("llama-2-7b-ic")?.format).toBe("tgi");
    expect(catalog.components.get("llama-3-8b-ic")?.format).toBe("openai-completions");
    expect(catalog.components.get("llama-3-1b-ic")?.format).toBe("openai-chat");
  });

  it("refuses a chat format on LMI whose max_new_tokens would need more than one call, saying why", () => {
    const raw = routesFile();
    raw.components["llama-3-1b-ic"].format = "openai-chat";
    expect(problemOf(raw)).toMatch(/^component llama-3-1b-ic: format openai-chat on engine lmi-rolling cannot continue a generation over several calls \(LMI's chat completions schema has no continue_final_message\), so max_new_tokens 124928 must fit one 60 s call/);
    raw.components["llama-3-8b-ic"].format = "openai-chat";
    raw.components["llama-3-1b-ic"].format = "lmi";
    expect(() => buildRouteCatalog(raw)).not.toThrow();
  });

  it("refuses a format the engine does not serve, naming both and what it serves", () => {
    const raw = routesFile();
    raw.components["llama-2-7b-ic"].engine = "lmi-dynamic";
    raw.components["llama-2-7b-ic"].format = "openai-chat";
    expect(problemOf(raw)).toBe("component llama-2-7b-ic: engine lmi-dynamic does not serve format openai-chat; it serves lmi");
    raw.components["llama-2-7b-ic"].format = "grpc";
    expect(problemOf(raw)).toContain("components.llama-2-7b-ic.format");
  });

  it("renders chat with the tokenizer's family unless the route names a template", () => {
    const raw = routesFile();
    raw.routes["llama-3-1b"].chat_template = "chatml";
    const catalog = buildRouteCatalog(raw);
    expect(catalog.routes.get("llama-2-7b")?.chat_template).toBe("llama2");
    expect(catalog.routes.get("llama-3-8b")?.chat_template).toBe("llama3");
    expect(catalog.routes.get("llama-3-1b")?.chat_template).toBe("chatml");
    raw.routes["llama-3-1b"].chat_template = "mistral";
    expect(problemOf(raw)).toContain("routes.llama-3-1b.chat_template");
  });
});

describe("buildRouteCatalog: what SageMaker would refuse, or never do", () => {
  it("defaults managed instance scaling to the endpoint's instance_count", () => {
    // Prepare
    const raw = routesFile();
    delete raw.endpoints["batchline-h100"].min_instance_count;
    delete raw.endpoints["batchline-h100"].max_instance_count;

    // Act
    const endpoint = buildRouteCatalog(raw).endpoints.get("batchline-h100");

    // Assess
    expect(endpoint).toMatchObject({ instance_count: 1, min_instance_count: 1, max_instance_count: 1 });
  });

  it("lets an endpoint scale in to zero instances when every component on it can scale in to zero copies", () => {
    // Prepare
    const raw = routesFile();
    raw.endpoints["batchline-h100"].min_instance_count = 0;
    raw.components["llama-2-7b-ic"].autoscaling.min_copies = 0;

    // Act & Assess
    expect(buildRouteCatalog(raw).endpoints.get("batchline-h100")?.min_instance_count).toBe(0);
  });

  it("lets a component scale in to zero copies on an endpoint that keeps its instance", () => {
    // Prepare: llama-3-8b-ic and llama-3-1b-ic have min_copies 0; the endpoint keeps 1 instance.
    const raw = routesFile();

    // Act
    const catalog = buildRouteCatalog(raw);

    // Assess
    expect(catalog.endpoints.get("batchline-h100")?.min_instance_count).toBe(1);
    expect(catalog.components.get("llama-3-8b-ic")?.autoscaling?.min_copies).toBe(0);
  });

  it.each([
    {
      problem: "an endpoint at min_instance_count 0 hosting a component that keeps a copy",
      change: (raw: any) => (raw.endpoints["batchline-h100"].min_instance_count = 0),
      says: "endpoints.batchline-h100.min_instance_count: min_instance_count 0 is never reached: llama-2-7b-ic (autoscaling.min_copies 1) always keeps a copy on an instance",
    },
    {
      problem: "an endpoint at min_instance_count 0 hosting a fixed fleet",
      change: (raw: any) => {
        raw.endpoints["batchline-h100"].min_instance_count = 0;
        raw.components["llama-2-7b-ic"].autoscaling.min_copies = 0;
        delete raw.components["llama-3-1b-ic"].autoscaling;
      },
      says: "llama-3-1b-ic (1 fixed copy, no autoscaling)",
    },
    {
      problem: "instances at creation outside managed instance scaling",
      change: (raw: any) => Object.assign(raw.endpoints["batchline-h100"], { instance_count: 2, min_instance_count: 1, max_instance_count: 1 }),
      says: "endpoints.batchline-h100: instance_count 2 must lie within min_instance_count 1 and max_instance_count 1",
    },
    {
      problem: "a copy with more GPUs than an instance has",
      change: (raw: any) => {
        raw.components["llama-3-1b-ic"].accelerators_per_copy = 16;
        raw.components["llama-3-1b-ic"].copies = 0;
      },
      says: "components.llama-3-1b-ic.accelerators_per_copy: a copy needs 16 GPUs on one instance; ml.p5.48xlarge instances of endpoint batchline-h100 have 8",
    },
    {
      problem: "autoscaling to more copies than the endpoint's most instances hold",
      change: (raw: any) => {
        raw.components["llama-3-8b-ic"].accelerators_per_copy = 4;
        raw.components["llama-3-8b-ic"].copies = 1;
        raw.components["llama-3-8b-ic"].autoscaling.max_copies = 3;
      },
      says: "components.llama-3-8b-ic.autoscaling: 3 copies of 4 GPUs never fit endpoint batchline-h100 at its max_instance_count 1",
    },
    {
      problem: "a component name SageMaker does not take",
      change: (raw: any) => {
        raw.components["llama.2-ic"] = raw.components["llama-2-7b-ic"];
        delete raw.components["llama-2-7b-ic"];
        raw.routes["llama-2-7b"].components = ["llama.2-ic"];
      },
      says: `components.llama.2-ic: "llama.2-ic" is not a SageMaker name`,
    },
    {
      problem: "a model with two sources",
      change: (raw: any) => (raw.components["llama-2-7b-ic"].model.s3_uri = "s3://bucket/llama/"),
      says: "components.llama-2-7b-ic.model: give exactly one of hf_model_id or s3_uri",
    },
    {
      problem: "a model location that is not S3",
      change: (raw: any) => (raw.components["llama-2-7b-ic"].model = { s3_uri: "https://bucket/llama/" }),
      says: "components.llama-2-7b-ic.model.s3_uri",
    },
    {
      problem: "a startup timeout SageMaker does not take",
      change: (raw: any) => (raw.components["llama-2-7b-ic"].model_download_timeout_seconds = 7200),
      says: "components.llama-2-7b-ic.model_download_timeout_seconds",
    },
  ])("rejects $problem", ({ change, says }) => {
    // Prepare
    const raw = routesFile();
    change(raw);

    // Act
    const message = problemOf(raw);

    // Assess
    expect(message).toContain(says);
  });
});

describe("deploymentSettings", () => {
  it("reserves the weights plus 8 GiB of host memory, and twice the warm-up for each startup timeout", () => {
    // Prepare
    const component = buildRouteCatalog(routesFile()).components.get("llama-2-7b-ic");

    // Act
    const settings = component && deploymentSettings(component);

    // Assess: 13.48 GB of bf16 weights = 12,856 MiB, + 8,192 MiB, in whole GiB.
    expect(settings).toEqual({ minMemoryMb: 21 * 1024, modelDataDownloadTimeoutSeconds: 600, containerStartupHealthCheckTimeoutSeconds: 600 });
  });

  it("keeps the timeouts within SageMaker's 60 to 3600 seconds, and takes the routes file's values", () => {
    // Prepare
    const raw = routesFile();
    Object.assign(raw.components["llama-2-7b-ic"], { warmup_seconds: 5000, min_memory_mb: 4096, startup_health_check_timeout_seconds: 120 });
    raw.components["llama-3-1b-ic"].warmup_seconds = 10;
    const catalog = buildRouteCatalog(raw);

    // Act
    const big = deploymentSettings(catalog.components.get("llama-2-7b-ic")!);
    const quick = deploymentSettings(catalog.components.get("llama-3-1b-ic")!);

    // Assess
    expect(big).toEqual({ minMemoryMb: 4096, modelDataDownloadTimeoutSeconds: 3600, containerStartupHealthCheckTimeoutSeconds: 120 });
    expect(quick.modelDataDownloadTimeoutSeconds).toBe(60);
  });
});
