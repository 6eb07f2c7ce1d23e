import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { type Stack, startStack } from "#local/stack";
import type { StackOptions } from "#local/stack-options";

/** infra/routes.yml as parsed YAML, for a test to change. */
export type RoutesYaml = { components: Record<string, Record<string, unknown>>; routes: Record<string, Record<string, unknown>> };

export type RoutesStack = {
  readonly stack: Stack;
  /** The stack's HTTP API with its key: a string body goes as JSON lines, anything else as JSON. */
  api(method: string, path: string, body?: string | object): Promise<{ status: number; json: any }>;
  stop(): Promise<void>;
};

/** A component of the parsed routes file, which the test is about to change. */
export function componentIn(raw: RoutesYaml, name: string): Record<string, unknown> {
  const component = raw.components[name];
  if (!component) throw new Error(`no ${name} in infra/routes.yml`);
  return component;
}

/** The embedded stack on infra/routes.yml as `change` leaves it, on a stage of its own. */
export async function startRoutesStack(name: string, change: (raw: RoutesYaml) => void, options: Omit<StackOptions, "stage" | "routesFile"> = {}): Promise<RoutesStack> {
  const dir = await mkdtemp(join(tmpdir(), `batchline-${name}-`));
  const raw = parseYaml(await readFile(join(process.cwd(), "infra", "routes.yml"), "utf8")) as RoutesYaml;
  change(raw);
  const routesFile = join(dir, "routes.yml");
  await writeFile(routesFile, stringifyYaml(raw));
  const stage = `${name.replace(/[^a-z0-9]/g, "")}${Math.random().toString(36).slice(2, 7)}`;
  let stack: Stack;
  try {
    stack = await startStack({ ...options, stage, routesFile });
  } catch (error) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    stack,
    async api(method, path, body) {
      const response = await fetch(`${stack.endpoints.http}${path}`, {
        method,
        headers: { authorization: `Bearer ${stack.apiKey}`, "content-type": typeof body === "string" ? "application/jsonl" : "application/json" },
        body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      });
      return { status: response.status, json: await response.json() };
    },
    async stop() {
      await stack.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
