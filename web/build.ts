import { copyFile, mkdir, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

/**
 * Builds the live dashboard as a static site: the page, its script bundled with uPlot, and
 * `config.json` naming the HTTP API it reads. The embedded stack serves what this writes; for AWS,
 * `npm run dashboard:build -- --api <HttpApiUrl>` writes a folder for any static host (S3 and
 * CloudFront, say): the API answers it cross-origin (`cors: true` in serverless.yml).
 */
export type DashboardSite = { readonly outDir: string; readonly api: string; readonly pollMs?: number };

const source = join(dirname(fileURLToPath(import.meta.url)), "dashboard");

export async function buildDashboard(site: DashboardSite): Promise<void> {
  await mkdir(site.outDir, { recursive: true });
  await build({
    entryPoints: [join(source, "main.ts")],
    outfile: join(site.outDir, "dashboard.js"),
    bundle: true,
    format: "esm",
    target: "es2022",
    minify: true,
    sourcemap: true,
    logLevel: "error",
  });
  const uPlotCss = createRequire(import.meta.url).resolve("uplot/dist/uPlot.min.css");
  await Promise.all([
    copyFile(join(source, "index.html"), join(site.outDir, "index.html")),
    copyFile(join(source, "style.css"), join(site.outDir, "style.css")),
    copyFile(uPlotCss, join(site.outDir, "uPlot.min.css")),
    writeFile(join(site.outDir, "config.json"), `${JSON.stringify({ api: site.api, ...(site.pollMs !== undefined && { pollMs: site.pollMs }) })}\n`),
  ]);
}

async function main(): Promise<void> {
  const { values } = (await import("node:util")).parseArgs({ options: { api: { type: "string" }, out: { type: "string", default: "dist/dashboard" } } });
  if (!values.api) throw new Error("--api: the HTTP API's URL is required (the stack's HttpApiUrl output, or http://127.0.0.1:3000)");
  await buildDashboard({ outDir: values.out, api: values.api });
  console.log(`wrote ${values.out}: serve it from any static host; open it with #key=<admin key>`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    console.error(String(error instanceof Error ? error.message : error));
    process.exit(2);
  });
}
