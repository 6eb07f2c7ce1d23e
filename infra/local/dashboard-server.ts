import { once } from "node:events";
import { createServer } from "node:http";
import sirv from "sirv";
import { buildDashboard } from "../../web/build.ts";

/**
 * The live dashboard on the embedded stack: the static site `npm run dashboard:build` writes for
 * AWS, built into the stack's data folder and served on a port of its own, as a static host would
 * serve it, not by the HTTP API (API Gateway serves no pages); it reads the API cross-origin.
 */
export type DashboardServer = { readonly url: string; close(): Promise<void> };

export async function startDashboard(options: { readonly host: string; readonly port: number; readonly api: string; readonly outDir: string; readonly pollMs?: number }): Promise<DashboardServer> {
  await buildDashboard({ outDir: options.outDir, api: options.api, ...(options.pollMs !== undefined && { pollMs: options.pollMs }) });
  const server = createServer(sirv(options.outDir, { dev: true, etag: true }));
  server.listen(options.port, options.host);
  await once(server, "listening");
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("the dashboard did not bind a TCP port");
  return {
    url: `http://${options.host}:${address.port}/`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
