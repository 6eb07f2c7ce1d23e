import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";
import { describeRefusal, eventSourceMappingRefusal, type EventSourceMappingRequest } from "#shared/core/event-source-mapping-rules";
import { buildRouteCatalog } from "#shared/core/routes";

const WINDOW_RULE = "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10";

const validation = (...violations: string[]) => ({
  name: "ValidationException",
  message: `${violations.length === 1 ? "1 validation error detected" : `${violations.length} validation errors detected`}: ${violations.join("; ")}`,
});

describe("eventSourceMappingRefusal (SQS standard queue)", () => {
  it("accepts AWS's defaults and every setting batchline ships or benches", () => {
    const accepted: EventSourceMappingRequest[] = [
      {},
      { BatchSize: 10, MaximumBatchingWindowInSeconds: 0, ScalingConfig: { MaximumConcurrency: 2 }, FunctionResponseTypes: ["ReportBatchItemFailures"] },
      { BatchSize: 1, MaximumBatchingWindowInSeconds: 0, ScalingConfig: { MaximumConcurrency: 2 } },
      { BatchSize: 100, MaximumBatchingWindowInSeconds: 1, ScalingConfig: { MaximumConcurrency: 2 } },
      { FunctionResponseTypes: [] },
      { ScalingConfig: {} },
    ];
    for (const request of accepted) expect(eventSourceMappingRefusal(request), JSON.stringify(request)).toBeUndefined();
  });

  it("takes BatchSize 1 to 10,000, with the model's words outside", () => {
    expect(eventSourceMappingRefusal({ BatchSize: 1 })).toBeUndefined();
    expect(eventSourceMappingRefusal({ BatchSize: 10_000, MaximumBatchingWindowInSeconds: 1 })).toBeUndefined();
    expect(eventSourceMappingRefusal({ BatchSize: 0 })).toEqual(
      validation("Value '0' at 'batchSize' failed to satisfy constraint: Member must have value greater than or equal to 1"),
    );
    expect(eventSourceMappingRefusal({ BatchSize: 10_001, MaximumBatchingWindowInSeconds: 1 })).toEqual(
      validation("Value '10001' at 'batchSize' failed to satisfy constraint: Member must have value less than or equal to 10000"),
    );
  });

  it("needs a window of at least 1 s above BatchSize 10: InvalidParameterValueException in AWS's words", () => {
    expect(eventSourceMappingRefusal({ BatchSize: 10, MaximumBatchingWindowInSeconds: 0 })).toBeUndefined();
    expect(eventSourceMappingRefusal({ BatchSize: 11, MaximumBatchingWindowInSeconds: 1 })).toBeUndefined();
    const refusal = { name: "InvalidParameterValueException", message: WINDOW_RULE };
    expect(eventSourceMappingRefusal({ BatchSize: 11, MaximumBatchingWindowInSeconds: 0 })).toEqual(refusal);
    // An absent window is AWS's default of 0.
    expect(eventSourceMappingRefusal({ BatchSize: 100 })).toEqual(refusal);
    expect(eventSourceMappingRefusal({ BatchSize: 10_000 })).toEqual(refusal);
  });

  it("takes MaximumBatchingWindowInSeconds 0 to 300", () => {
    expect(eventSourceMappingRefusal({ MaximumBatchingWindowInSeconds: 0 })).toBeUndefined();
    expect(eventSourceMappingRefusal({ MaximumBatchingWindowInSeconds: 300 })).toBeUndefined();
    expect(eventSourceMappingRefusal({ MaximumBatchingWindowInSeconds: -1 })).toEqual(
      validation("Value '-1' at 'maximumBatchingWindowInSeconds' failed to satisfy constraint: Member must have value greater than or equal to 0"),
    );
    expect(eventSourceMappingRefusal({ MaximumBatchingWindowInSeconds: 301 })).toEqual(
      validation("Value '301' at 'maximumBatchingWindowInSeconds' failed to satisfy constraint: Member must have value less than or equal to 300"),
    );
  });

  it("takes ScalingConfig.MaximumConcurrency 2 to 1,000", () => {
    expect(eventSourceMappingRefusal({ ScalingConfig: { MaximumConcurrency: 2 } })).toBeUndefined();
    expect(eventSourceMappingRefusal({ ScalingConfig: { MaximumConcurrency: 1000 } })).toBeUndefined();
    expect(eventSourceMappingRefusal({ ScalingConfig: { MaximumConcurrency: 1 } })).toEqual(
      validation("Value '1' at 'scalingConfig.maximumConcurrency' failed to satisfy constraint: Member must have value greater than or equal to 2"),
    );
    expect(eventSourceMappingRefusal({ ScalingConfig: { MaximumConcurrency: 1001 } })).toEqual(
      validation("Value '1001' at 'scalingConfig.maximumConcurrency' failed to satisfy constraint: Member must have value less than or equal to 1000"),
    );
  });

  it("takes FunctionResponseTypes ReportBatchItemFailures only, at most once", () => {
    expect(eventSourceMappingRefusal({ FunctionResponseTypes: ["ReportBatchItemFailures"] })).toBeUndefined();
    expect(eventSourceMappingRefusal({ FunctionResponseTypes: ["ReportEverything"] })).toEqual(
      validation(
        "Value '[ReportEverything]' at 'functionResponseTypes' failed to satisfy constraint: Member must satisfy constraint: [Member must satisfy enum value set: [ReportBatchItemFailures], Member must not be null]",
      ),
    );
    expect(eventSourceMappingRefusal({ FunctionResponseTypes: ["ReportBatchItemFailures", "ReportBatchItemFailures"] })).toEqual(
      validation(
        "Value '[ReportBatchItemFailures, ReportBatchItemFailures]' at 'functionResponseTypes' failed to satisfy constraint: Member must have length less than or equal to 1",
      ),
    );
  });

  it("reports every model violation at once, before the window rule", () => {
    // BatchSize 20,000 with no window breaks both layers: the model's range is what AWS answers.
    expect(eventSourceMappingRefusal({ BatchSize: 20_000, MaximumBatchingWindowInSeconds: 301, ScalingConfig: { MaximumConcurrency: 1 } })).toEqual(
      validation(
        "Value '20000' at 'batchSize' failed to satisfy constraint: Member must have value less than or equal to 10000",
        "Value '301' at 'maximumBatchingWindowInSeconds' failed to satisfy constraint: Member must have value less than or equal to 300",
        "Value '1' at 'scalingConfig.maximumConcurrency' failed to satisfy constraint: Member must have value greater than or equal to 2",
      ),
    );
    expect(eventSourceMappingRefusal({ BatchSize: 20_000 })?.name).toBe("ValidationException");
  });

  it("prints as the SDK names it: error name, then message", () => {
    expect(describeRefusal({ name: "InvalidParameterValueException", message: WINDOW_RULE })).toBe(`InvalidParameterValueException: ${WINDOW_RULE}`);
  });
});

describe("infra/routes.yml's window, checked on load with the same rules", () => {
  /** infra/routes.yml as parsed YAML, untyped: each test reaches in to change one value. */
  const routesFile = (): any => parseYaml(readFileSync("infra/routes.yml", "utf8"));

  it("ships settings AWS accepts on every route", () => {
    const catalog = buildRouteCatalog(routesFile());
    for (const route of catalog.routes.values()) {
      const { batch_size, batching_window_seconds, maximum_concurrency } = route.window;
      expect(
        eventSourceMappingRefusal({ BatchSize: batch_size, MaximumBatchingWindowInSeconds: batching_window_seconds, ScalingConfig: { MaximumConcurrency: maximum_concurrency } }),
        route.name,
      ).toBeUndefined();
    }
  });

  it.each([
    {
      window: { batch_size: 100, batching_window_seconds: 0 },
      says: `routes.llama-2-7b.window: AWS refuses this event source mapping: InvalidParameterValueException: ${WINDOW_RULE}`,
    },
    {
      window: { batch_size: 10_001, batching_window_seconds: 1 },
      says: "routes.llama-2-7b.window: AWS refuses this event source mapping: ValidationException: 1 validation error detected: Value '10001' at 'batchSize' failed to satisfy constraint: Member must have value less than or equal to 10000",
    },
    {
      window: { batching_window_seconds: 301 },
      says: "routes.llama-2-7b.window: AWS refuses this event source mapping: ValidationException: 1 validation error detected: Value '301' at 'maximumBatchingWindowInSeconds' failed to satisfy constraint: Member must have value less than or equal to 300",
    },
    {
      window: { maximum_concurrency: 1 },
      says: "routes.llama-2-7b.window: AWS refuses this event source mapping: ValidationException: 1 validation error detected: Value '1' at 'scalingConfig.maximumConcurrency' failed to satisfy constraint: Member must have value greater than or equal to 2",
    },
  ])("refuses $window in AWS's words", ({ window, says }) => {
    const raw = routesFile();
    Object.assign(raw.routes["llama-2-7b"].window, window);
    expect(() => buildRouteCatalog(raw)).toThrow(says);
  });

  it("takes BatchSize 100 with a 1 s window, as the bench's fixed-window policy runs", () => {
    const raw = routesFile();
    Object.assign(raw.routes["llama-2-7b"].window, { batch_size: 100, batching_window_seconds: 1 });
    expect(buildRouteCatalog(raw).routes.get("llama-2-7b")?.window).toMatchObject({ batch_size: 100, batching_window_seconds: 1 });
  });
});
