import { SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import { afterAll, beforeAll, describe } from "vitest";
import { SageMakerInvoker } from "#shared/aws/sagemaker-invoker";
import { startSageMakerEmulator, type SageMakerEmulator } from "#local/sagemaker/server";
import { ScriptedInvoker } from "../helpers/fakes.ts";
import { localClientConfig, pollUntil } from "../helpers/local-aws.ts";
import { componentOf, routesCatalog } from "../helpers/sagemaker.ts";
import { invokerContract } from "./invoker.ts";

const catalog = routesCatalog();
const rolling = componentOf(catalog, "llama-2-7b-ic");

describe("Invoker contract", () => {
  describe("memory", () =>
    invokerContract(async ({ slow }) => {
      const invoker = new ScriptedInvoker();
      // Held until the test gives the call up.
      if (slow) invoker.gate = new Promise(() => {});
      const running = () => pollUntil(async () => (invoker.inFlight > 0 ? true : undefined), "the call in flight").then(() => undefined);
      return { invoker, component: rolling, running };
    }));

  describe("sagemaker emulator", () => {
    // Real time: 500 tokens take the simulated H100 about 3 s, a slow answer.
    let emulator: SageMakerEmulator;
    let client: SageMakerRuntimeClient;
    beforeAll(async () => {
      emulator = await startSageMakerEmulator({ catalog, port: 0, timeScale: 1 });
      client = new SageMakerRuntimeClient({ ...localClientConfig(emulator.url), maxAttempts: 1 });
    });
    afterAll(async () => {
      client.destroy();
      await emulator.close();
    });
    const running = () =>
      pollUntil(async () => {
        const copy = emulator.stats().components.find((c) => c.component === rolling.name)?.copies[0];
        return copy && copy.runningSequences > 0 ? true : undefined;
      }, "the copy running the call").then(() => undefined);
    invokerContract(async () => ({ invoker: new SageMakerInvoker({ client, catalog }), component: rolling, running }));
  });
});
