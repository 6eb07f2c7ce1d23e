import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, parseLogLevel, topUpLatest, topUpUntil } from "#shared/config";
import { packageTemplate } from "#local/template";

const base = { BATCHLINE_RESOURCE_PREFIX: "batchline-test", BATCHLINE_WS_ENDPOINT: "http://127.0.0.1:1" };
const load = (env: Record<string, string>) => loadConfig({ ...base, ...env });
const refusal = (env: Record<string, string>) => {
  try {
    load(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(env)}`);
};

describe("loadConfig", () => {
  it("takes the defaults where the environment says nothing", () => {
    const config = load({});
    expect(config.logLevel).toBe("INFO");
    expect(config.batcher).toEqual({ topUpBudgetMs: 60_000, finishReserveMs: 75_000, timeoutSeconds: undefined, queueVisibilityTimeoutSeconds: undefined });
  });

  it("names the missing or malformed variable", () => {
    expect(() => loadConfig({})).toThrow("environment variable BATCHLINE_RESOURCE_PREFIX is required");
    expect(refusal({ BATCHLINE_WS_ENDPOINT: "not a url" })).toBe('BATCHLINE_WS_ENDPOINT must be a URL, got "not a url"');
  });
});

describe("BATCHLINE_LOG_LEVEL", () => {
  it("takes Powertools' levels in any case", () => {
    expect(parseLogLevel({ BATCHLINE_LOG_LEVEL: "debug" })).toBe("DEBUG");
    expect(parseLogLevel({ BATCHLINE_LOG_LEVEL: "SILENT" })).toBe("SILENT");
    expect(load({ BATCHLINE_LOG_LEVEL: "Warn" }).logLevel).toBe("WARN");
  });

  it("refuses any other", () => {
    expect(refusal({ BATCHLINE_LOG_LEVEL: "VERBOSE" })).toBe('BATCHLINE_LOG_LEVEL must be one of TRACE, DEBUG, INFO, WARN, ERROR, SILENT, CRITICAL, got "VERBOSE"');
  });
});

describe("the batcher's timing", () => {
  it("takes durations in seconds", () => {
    const config = load({ BATCHLINE_TOP_UP_BUDGET_SECONDS: "30.5", BATCHLINE_FINISH_RESERVE_SECONDS: "90" });
    expect(config.batcher).toMatchObject({ topUpBudgetMs: 30_500, finishReserveMs: 90_000 });
  });

  it("refuses a duration that is not a number of seconds", () => {
    expect(refusal({ BATCHLINE_TOP_UP_BUDGET_SECONDS: "-1" })).toBe('BATCHLINE_TOP_UP_BUDGET_SECONDS must be a number of seconds of at least 0, got "-1"');
    expect(refusal({ BATCHLINE_FINISH_RESERVE_SECONDS: "75s" })).toBe('BATCHLINE_FINISH_RESERVE_SECONDS must be a number of seconds of at least 0, got "75s"');
  });

  it("keeps a finish reserve for a late start, SageMaker's longest call and the final writes", () => {
    expect(load({ BATCHLINE_FINISH_RESERVE_SECONDS: "75" }).batcher.finishReserveMs).toBe(75_000);
    expect(refusal({ BATCHLINE_FINISH_RESERVE_SECONDS: "74" })).toBe(
      "BATCHLINE_FINISH_RESERVE_SECONDS must be at least 75, got 74: a job may start 5 s after the top-up, its GPU call may take SageMaker's 60 s, and the final writes need 10 s",
    );
  });

  it("refuses a function timeout outside Lambda's", () => {
    expect(refusal({ BATCHLINE_BATCHER_TIMEOUT_SECONDS: "901" })).toBe(
      'BATCHLINE_BATCHER_TIMEOUT_SECONDS must be a whole number of seconds from 1 to 900 (Lambda\'s timeouts), got "901"',
    );
    expect(refusal({ BATCHLINE_BATCHER_TIMEOUT_SECONDS: "150.5" })).toMatch(/^BATCHLINE_BATCHER_TIMEOUT_SECONDS must be a whole number/);
  });

  it("fits the top-up budget and the finish reserve in the function's timeout", () => {
    expect(load({ BATCHLINE_BATCHER_TIMEOUT_SECONDS: "135" }).batcher.timeoutSeconds).toBe(135);
    expect(refusal({ BATCHLINE_BATCHER_TIMEOUT_SECONDS: "134" })).toBe(
      "BATCHLINE_BATCHER_TIMEOUT_SECONDS must be at least the top-up budget plus the finish reserve, 60 + 75 = 135, got 134",
    );
    expect(refusal({ BATCHLINE_BATCHER_TIMEOUT_SECONDS: "150", BATCHLINE_TOP_UP_BUDGET_SECONDS: "80" })).toMatch(/80 \+ 75 = 155, got 150$/);
  });

  it("refuses a queue that hides a message for less than the function's timeout, in AWS's words", () => {
    const ok = load({ BATCHLINE_BATCHER_TIMEOUT_SECONDS: "150", BATCHLINE_QUEUE_VISIBILITY_TIMEOUT_SECONDS: "150" });
    expect(ok.batcher).toMatchObject({ timeoutSeconds: 150, queueVisibilityTimeoutSeconds: 150 });
    expect(refusal({ BATCHLINE_BATCHER_TIMEOUT_SECONDS: "150", BATCHLINE_QUEUE_VISIBILITY_TIMEOUT_SECONDS: "149" })).toBe(
      "BATCHLINE_QUEUE_VISIBILITY_TIMEOUT_SECONDS: Queue visibility timeout: 149 seconds is less than Function timeout: 150 seconds",
    );
    expect(refusal({ BATCHLINE_QUEUE_VISIBILITY_TIMEOUT_SECONDS: "43201" })).toBe(
      'BATCHLINE_QUEUE_VISIBILITY_TIMEOUT_SECONDS must be a whole number of seconds from 0 to 43200 (SQS\'s visibility timeouts), got "43201"',
    );
  });

  it("refuses a visibility timeout with no function timeout to check it against", () => {
    expect(refusal({ BATCHLINE_QUEUE_VISIBILITY_TIMEOUT_SECONDS: "900" })).toBe(
      "BATCHLINE_QUEUE_VISIBILITY_TIMEOUT_SECONDS is set without BATCHLINE_BATCHER_TIMEOUT_SECONDS, the timeout it is checked against",
    );
  });

  it("tops up for the budget, or less where the time left cannot hold it and the reserve", () => {
    const { batcher } = load({});
    const now = new Date("2025-01-01T00:00:00Z");
    const after = (remainingMs: number) => topUpUntil(batcher, now, remainingMs).getTime() - now.getTime();
    expect(after(150_000)).toBe(60_000);
    expect(after(100_000)).toBe(25_000);
    expect(after(10_000)).toBe(0);
  });

  it("may go on topping up, at the latest, until what the finish reserve leaves", () => {
    const { batcher } = load({});
    const now = new Date("2025-01-01T00:00:00Z");
    expect(topUpLatest(batcher, now, 150_000).getTime() - now.getTime()).toBe(75_000);
    expect(topUpLatest(batcher, now, 10_000).getTime()).toBe(now.getTime());
  });
});

describe("the template's batcher", () => {
  type Resource = { Type: string; Properties: Record<string, any> };

  it("is told its own timeout and its queues' visibility timeout, which its config accepts", async () => {
    const { Resources } = (await packageTemplate({ projectDir: process.cwd(), stage: "config" })) as { Resources: Record<string, Resource> };
    const batcher = Resources.BatcherLambdaFunction;
    const variables = batcher?.Properties.Environment.Variables as Record<string, unknown>;
    const timing = {
      BATCHLINE_BATCHER_TIMEOUT_SECONDS: String(variables.BATCHLINE_BATCHER_TIMEOUT_SECONDS),
      BATCHLINE_QUEUE_VISIBILITY_TIMEOUT_SECONDS: String(variables.BATCHLINE_QUEUE_VISIBILITY_TIMEOUT_SECONDS),
    };
    expect(Number(timing.BATCHLINE_BATCHER_TIMEOUT_SECONDS)).toBe(batcher?.Properties.Timeout);
    const visibilities = Object.values(Resources)
      .filter((r) => r.Type === "AWS::Lambda::EventSourceMapping" && r.Properties.FunctionName["Fn::GetAtt"]?.[0] === "BatcherLambdaFunction")
      .map((m) => Resources[m.Properties.EventSourceArn["Fn::GetAtt"][0]]?.Properties.VisibilityTimeout);
    expect(visibilities.length).toBeGreaterThan(0);
    for (const visibility of visibilities) expect(visibility).toBe(Number(timing.BATCHLINE_QUEUE_VISIBILITY_TIMEOUT_SECONDS));
    expect(load(timing).batcher.timeoutSeconds).toBe(batcher?.Properties.Timeout);
  });
});
