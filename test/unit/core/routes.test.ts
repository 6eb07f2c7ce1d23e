import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";
import { planPlacement } from "#shared/core/placement";
import { buildRouteCatalog, RoutesFileError } from "#shared/core/routes";

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
      says: "routes.llama-3-8b.window.maximum_concurrency: 3 pollers for 2 copies would split windows across idle pollers; at most 2",
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
