import { loadConfig, type Config } from "./config.ts";
import { createClients, type Clients } from "./aws/clients.ts";
import { buildDeps, type Deps } from "./aws/deps.ts";
import { appLogger } from "./observability.ts";
import type { Logger } from "./app/logger.ts";

export type Runtime = Deps & { readonly logger: Logger; readonly config: Config; readonly clients: Clients };

let cached: Runtime | undefined;

/** The function's dependencies and configuration, built on first use (cold start) from the environment. */
export function runtimeDeps(): Runtime {
  if (!cached) {
    const config = loadConfig(process.env);
    const clients = createClients({ wsEndpoint: config.wsEndpoint });
    cached = { ...buildDeps(config, clients), logger: appLogger, config, clients };
  }
  return cached;
}
