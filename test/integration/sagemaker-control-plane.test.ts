import { DescribeInferenceComponentCommand, SageMakerClient } from "@aws-sdk/client-sagemaker";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { localClientConfig, pollUntil } from "../helpers/local-aws.ts";
import { caught, componentOf, emulatorForTests, routesCatalog, withTestComponents } from "../helpers/sagemaker.ts";

/** DescribeInferenceComponent through the AWS SDK's SageMaker (control plane) client, as the batcher calls it. */
const routes = routesCatalog();
const { catalog, added } = withTestComponents(routes, componentOf(routes, "llama-2-7b-ic"), { "described-test": { copies: 1, warmup_seconds: 60 } });
const described = added["described-test"] ?? componentOf(routes, "llama-2-7b-ic");

describe("SageMaker control plane on the emulator", () => {
  const env = emulatorForTests({ catalog, timeScale: 100 });
  let client: SageMakerClient;
  beforeAll(() => {
    client = new SageMakerClient({ ...localClientConfig(env.emulator.url), maxAttempts: 1 });
  });
  afterAll(() => client.destroy());
  const describeCopies = async () => (await client.send(new DescribeInferenceComponentCommand({ InferenceComponentName: described.name }))).RuntimeConfig;

  it("describes a component's copies: current ones serve, desired ones include those warming up", async () => {
    // Act
    const before = await describeCopies();
    env.emulator.scaling.scale(described.name, 2, { cause: "manual", detail: "test" });
    const warming = await describeCopies();
    const warm = await pollUntil(async () => {
      const copies = await describeCopies();
      return copies?.CurrentCopyCount === 2 ? copies : undefined;
    }, "the second copy to serve");

    // Assess
    expect(before).toEqual({ DesiredCopyCount: 1, CurrentCopyCount: 1 });
    expect(warming).toEqual({ DesiredCopyCount: 2, CurrentCopyCount: 1 });
    expect(warm).toEqual({ DesiredCopyCount: 2, CurrentCopyCount: 2 });
  });

  it("names the component and its endpoint, and refuses an unknown one as SageMaker does", async () => {
    // Act
    const out = await client.send(new DescribeInferenceComponentCommand({ InferenceComponentName: described.name }));
    const unknown = await caught(client.send(new DescribeInferenceComponentCommand({ InferenceComponentName: "no-such-component" })));

    // Assess
    expect(out).toMatchObject({ InferenceComponentName: described.name, EndpointName: described.endpointName, InferenceComponentStatus: "InService" });
    expect(out.CreationTime).toBeInstanceOf(Date);
    expect(unknown.name).toBe("ValidationException");
    expect(unknown.message).toMatch(/Could not find inference component/);
  });
});
