import { mkdtemp, readdir, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { LOCAL_CREDENTIALS } from "./aws.ts";

/**
 * How to run osls: its bin script under this very Node (22), which is what `npx osls` runs, minus
 * the npm process in between, so that signals reach osls itself.
 */
export function oslsCommand(args: readonly string[]): { command: string; args: string[] } {
  const packageJson = createRequire(import.meta.url).resolve("osls/package.json");
  return { command: process.execPath, args: [join(dirname(packageJson), "bin", "serverless.js"), ...args] };
}

/**
 * osls needs credentials only to look them up; the handlers it runs offline need them for every
 * SDK call (serverless-offline passes none of its own).
 */
export function oslsEnv(extra: Readonly<Record<string, string>> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    AWS_ACCESS_KEY_ID: LOCAL_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: LOCAL_CREDENTIALS.secretAccessKey,
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: "true",
    ...extra,
  };
}

export type ScratchService = { readonly dir: string; remove(): Promise<void> };

/** What osls writes into the service folder: each scratch copy gets its own. */
const privateEntries = new Set([".esbuild", ".serverless", ".git"]);
const serverlessYml = /^serverless\.ya?ml$/;

/**
 * A scratch copy of the project for one osls run: every entry a symlink, but serverless.yml a
 * real file (osls will not take a linked one), optionally rewritten. osls then keeps its
 * `.esbuild` and `.serverless` folders there: `osls package` deletes `.esbuild` when done, and
 * several offline instances building into one `.esbuild` would read each other's half-written
 * bundles.
 */
export async function scratchService(projectDir: string, rewrite: (config: string) => string = (c) => c): Promise<ScratchService> {
  const dir = await mkdtemp(join(tmpdir(), "batchline-osls-"));
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    for (const entry of await readdir(projectDir, { withFileTypes: true })) {
      if (privateEntries.has(entry.name)) continue;
      const from = join(projectDir, entry.name);
      const to = join(dir, entry.name);
      if (entry.isFile() && serverlessYml.test(entry.name)) await writeFile(to, rewrite(await readFile(from, "utf8")));
      else await symlink(from, to);
    }
  } catch (error) {
    await remove();
    throw error;
  }
  return { dir, remove };
}
