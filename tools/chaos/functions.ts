import { join } from "node:path";
import { build } from "esbuild";

export type FunctionModules = { readonly batcher: string; readonly deadLetter: string };

const ENTRIES = { batcher: "functions/batcher/handler.ts", deadLetter: "functions/dead-letter/handler.ts" } as const;

/**
 * The handler modules the batcher runners import: esbuild bundles made as serverless.yml makes
 * them (ESM, node22, one file each: what Lambda would load), or the TypeScript source as it is.
 * The paths are known at once; `ready` says when the bundles are written.
 */
export function prepareFunctions(mode: "bundle" | "source", projectDir: string, outDir: string): { readonly modules: FunctionModules; readonly ready: Promise<void> } {
  if (mode === "source") return { modules: { batcher: join(projectDir, ENTRIES.batcher), deadLetter: join(projectDir, ENTRIES.deadLetter) }, ready: Promise.resolve() };
  const bundle = async (entry: string, name: string) => {
    const outfile = join(outDir, `${name}.mjs`);
    await build({
      absWorkingDir: projectDir,
      entryPoints: [entry],
      outfile,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node22",
      mainFields: ["module", "main"],
      banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
      logLevel: "warning",
    });
    return outfile;
  };
  const modules = { batcher: join(outDir, "batcher.mjs"), deadLetter: join(outDir, "dead-letter.mjs") };
  const ready = Promise.all([bundle(ENTRIES.batcher, "batcher"), bundle(ENTRIES.deadLetter, "dead-letter")]).then(() => undefined);
  return { modules, ready };
}
