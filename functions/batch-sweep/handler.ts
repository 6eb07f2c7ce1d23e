import { sweepBatches } from "#shared/app/batch-sweep";
import { lambdaFunction } from "#shared/lambda";
import { runtimeDeps } from "#shared/runtime";

const deps = runtimeDeps();

/** Invoked every minute by its schedule (EventBridge in AWS, infra/local/scheduler.ts locally). */
export const handler = lambdaFunction(async () => {
  const report = await sweepBatches(deps);
  if (report.expired + report.resent + report.failed > 0) deps.logger.info("batch sweep", report);
  return report;
});
