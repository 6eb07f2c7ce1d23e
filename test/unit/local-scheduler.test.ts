import { describe, expect, it } from "vitest";
import { rateMs, startScheduler } from "../../infra/local/scheduler.ts";
import { silentLogger } from "../../infra/local/log.ts";
import { parseTemplate } from "../../infra/local/template.ts";

const template = {
  Resources: {
    BatchSweepLambdaFunction: { Type: "AWS::Lambda::Function", Properties: { FunctionName: "batchline-local-batchSweep" } },
    BatchSweepEventsRuleSchedule1: {
      Type: "AWS::Events::Rule",
      Properties: { ScheduleExpression: "rate(1 minute)", State: "ENABLED", Targets: [{ Arn: { "Fn::GetAtt": ["BatchSweepLambdaFunction", "Arn"] }, Id: "batchSweepSchedule" }] },
    },
    Disabled: { Type: "AWS::Events::Rule", Properties: { ScheduleExpression: "rate(5 minutes)", State: "DISABLED", Targets: [{ Arn: "arn:aws:lambda:us-east-1:1:function:x" }] } },
  },
};

describe("the local scheduler", () => {
  it("reads EventBridge rates as AWS takes them", () => {
    expect(rateMs("rate(1 minute)")).toBe(60_000);
    expect(rateMs("rate(5 minutes)")).toBe(300_000);
    expect(rateMs("rate(2 hours)")).toBe(7_200_000);
    expect(rateMs("cron(0 12 * * ? *)")).toBeUndefined();
    expect(() => rateMs("rate(1 minutes)")).toThrow(/rate\(1 minute\)/);
    expect(() => rateMs("rate(5 minute)")).toThrow();
  });

  it("finds the template's enabled schedules and their target functions", () => {
    expect(parseTemplate(template).schedules).toEqual([
      { logicalId: "BatchSweepEventsRuleSchedule1", functionName: "batchline-local-batchSweep", expression: "rate(1 minute)", periodMs: 60_000 },
    ]);
  });

  it("invokes each target at its period with a scheduled event, runs one now on demand, and stops after what is in flight", async () => {
    // Prepare
    const calls: { fn: string; event: any }[] = [];
    const ticked = Promise.withResolvers<void>();
    const finish = Promise.withResolvers<void>();
    const invoke = async (fn: string, event: unknown) => {
      calls.push({ fn, event });
      if (calls.length === 2) ticked.resolve();
      if (calls.length === 3) await finish.promise;
      return {};
    };
    const { schedules } = parseTemplate(template);
    const scheduler = startScheduler({ schedules, invoke, log: silentLogger, periodMs: { "batchline-local-batchSweep": 20 } });

    // Act
    await scheduler.runNow("batchline-local-batchSweep");
    await ticked.promise;
    await expect.poll(() => calls.length, { timeout: 5000 }).toBeGreaterThanOrEqual(3);
    let stopped = false;
    const stopping = scheduler.stop().then(() => (stopped = true));
    await new Promise((r) => setImmediate(r));
    const stoppedBeforeFinish = stopped;
    finish.resolve();
    await stopping;

    // Assess
    expect(calls[0]).toMatchObject({ fn: "batchline-local-batchSweep", event: { source: "aws.events", "detail-type": "Scheduled Event", resources: [expect.stringContaining("rule/BatchSweepEventsRuleSchedule1")] } });
    expect(stoppedBeforeFinish).toBe(false);
    await expect(scheduler.runNow("nope")).rejects.toThrow(/no schedule/);
  });
});
