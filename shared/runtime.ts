import { loadConfig } from "./config.ts";
import { buildDeps, type Deps } from "./aws/deps.ts";
import { appLogger } from "./observability.ts";
import type { Logger } from "./app/logger.ts";

let cached: (Deps & { readonly logger: Logger }) | undefined;

/** The function's dependencies, built on first use (cold start) from the environment. */
export function runtimeDeps(): Deps & { readonly logger: Logger } {
  cached ??= { ...buildDeps(loadConfig(process.env)), logger: appLogger };
  return cached;
}
