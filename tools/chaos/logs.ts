import { appendFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/**
 * A writer of lines to `<outDir>/latest-functions.log` (the folder exists), emptied at the start;
 * with no outDir, one that drops them. The functions' and the stack's warnings go there, not to
 * the console, where thousands of injected faults would bury the progress lines.
 */
export function functionLog(outDir: string | undefined): (line: string) => void {
  if (outDir === undefined) return () => undefined;
  const file = join(outDir, "latest-functions.log");
  writeFileSync(file, "");
  return (line) => appendFileSync(file, line.endsWith("\n") ? line : `${line}\n`);
}

/** Where the run tells what it is doing: `print` as is, `say` after the seconds since the start. */
export type RunConsole = { readonly print: (line: string) => void; readonly say: (line: string) => void };

export function runConsole(print: (line: string) => void, startedAt: number): RunConsole {
  return { print, say: (line) => print(`[${((Date.now() - startedAt) / 1000).toFixed(1)} s] ${line}`) };
}
