import { createRequire } from "node:module";
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
