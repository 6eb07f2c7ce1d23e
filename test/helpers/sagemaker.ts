import { InvokeEndpointCommand, InvokeEndpointWithResponseStreamCommand, SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import { afterAll, beforeAll } from "vitest";
import { loadRouteCatalog } from "#shared/config";
import type { Component, RouteCatalog } from "#shared/core/routes";
import { startSageMakerEmulator, type SageMakerEmulator, type SageMakerEmulatorOptions } from "#local/sagemaker/server";
import { localClientConfig } from "./local-aws.ts";

/** The catalog of infra/routes.yml. */
export const routesCatalog = (): RouteCatalog => loadRouteCatalog("infra/routes.yml");

/** A component of the catalog, or a failed test that names it. */
export function componentOf(catalog: RouteCatalog, name: string): Component {
  const component = catalog.components.get(name);
  if (!component) throw new Error(`no component ${name} in the catalog`);
  return component;
}

/**
 * The catalog plus test components on an endpoint of their own (8 H100s), each derived from
 * `base` with a change, so that the tests follow whatever infra/routes.yml holds.
 */
export function withTestComponents(catalog: RouteCatalog, base: Component, changes: Record<string, Partial<Component>>) {
  const endpointName = "test-h100";
  const endpointSpec = { ...base.endpointSpec, instance_count: 1, gpus_per_instance: 8 };
  const added = Object.entries(changes).map(([name, change]): Component => ({ ...base, copies: 1, ...change, name, endpoint: endpointName, endpointName, endpointSpec }));
  return {
    catalog: {
      ...catalog,
      endpoints: new Map([...catalog.endpoints, [endpointName, endpointSpec]]),
      components: new Map([...catalog.components, ...added.map((c) => [c.name, c] as const)]),
    } satisfies RouteCatalog,
    added: Object.fromEntries(added.map((c) => [c.name, c])),
  };
}

/** An SDK client of the emulator that never retries: each test sees the first answer. */
export function sagemakerClient(emulator: SageMakerEmulator): SageMakerRuntimeClient {
  return new SageMakerRuntimeClient({ ...localClientConfig(emulator.url), maxAttempts: 1 });
}

/**
 * An emulator on a free port and an SDK client of it for the tests of the enclosing describe
 * block: started before them, closed after.
 */
export function emulatorForTests(options: Omit<SageMakerEmulatorOptions, "port">) {
  let emulator: SageMakerEmulator | undefined;
  let client: SageMakerRuntimeClient | undefined;
  beforeAll(async () => {
    emulator = await startSageMakerEmulator({ ...options, port: 0 });
    client = sagemakerClient(emulator);
  });
  afterAll(async () => {
    client?.destroy();
    await emulator?.close();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error("the emulator has not started");
    return value;
  };
  return {
    get emulator(): SageMakerEmulator {
      return started(emulator);
    },
    get sagemaker(): SageMakerRuntimeClient {
      return started(client);
    },
  };
}

export const invokeCommand = (component: Component, body: unknown, endpoint = component.endpointName) =>
  new InvokeEndpointCommand({
    EndpointName: endpoint,
    InferenceComponentName: component.name,
    ContentType: "application/json",
    Body: typeof body === "string" ? body : JSON.stringify(body),
  });

export const streamCommand = (component: Component, body: unknown) =>
  new InvokeEndpointWithResponseStreamCommand({
    EndpointName: component.endpointName,
    InferenceComponentName: component.name,
    ContentType: "application/json",
    Body: JSON.stringify(body),
  });

export const decodeJson = (body: Uint8Array | undefined) => JSON.parse(new TextDecoder().decode(body)) as unknown;

/** The error a call rejects with; fails the test if it succeeds. */
export async function caught(promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof Error) return error as Error & Record<string, unknown>;
    throw error;
  }
  throw new Error("expected the call to fail");
}

/** Calls the emulator's control routes (/_emulator/...). */
export async function control(emulator: SageMakerEmulator, method: string, path: string, body?: unknown): Promise<any> {
  const response = await fetch(`${emulator.url}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
  return response.json();
}
