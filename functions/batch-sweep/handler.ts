import { sweepBatches } from "#shared/app/batch-sweep";
import { slotSweepDue, sweepSlots } from "#shared/app/slot-sweep";
import { lambdaFunction } from "#shared/lambda";
import { runtimeDeps } from "#shared/runtime";

const deps = runtimeDeps();

/**
 * Invoked every minute by its schedule (EventBridge in AWS, infra/local/scheduler.ts locally);
 * every tenth minute it also gives back the slots whose job was never stored.
 */
export const handler = lambdaFunction(async () => {
  const report = await sweepBatches(deps);
  if (report.expired + report.resent + report.failed + report.requeued > 0) deps.logger.info("batch sweep", report);
  if (!slotSweepDue(deps.clock.now())) return report;
  const slots = await sweepSlots(deps);
  if (slots.suspect + slots.givenBack > 0) deps.logger.info("slot sweep", slots);
  return { ...report, slots };
});
