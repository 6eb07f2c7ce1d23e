import { createHash } from "node:crypto";
import { readFile, rename, writeFile } from "node:fs/promises";
import { z } from "zod";

/**
 * What `batchline submit` must remember to go on after an interruption: the input it sent (by its
 * hash, so that an edited file is a new batch), the file the stack made of it and the batch.
 * Kept beside the results, as `<results>.batchline.json`.
 */
const stateSchema = z.strictObject({ input_sha256: z.string(), file_id: z.string().optional(), batch_id: z.string().optional() });
export type SubmitState = z.infer<typeof stateSchema>;

export const statePathOf = (resultsPath: string) => `${resultsPath}.batchline.json`;

export async function sha256Of(path: string): Promise<string> {
  return createHash("sha256").update(await readFile(path)).digest("hex");
}

/** The state of an earlier run of the same input, or undefined (none, or of another input). */
export async function loadState(path: string, inputSha256: string): Promise<SubmitState | undefined> {
  const text = await readFile(path, "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  const parsed = stateSchema.safeParse(JSON.parse(text));
  return parsed.success && parsed.data.input_sha256 === inputSha256 ? parsed.data : undefined;
}

/** Written whole to a temporary file and renamed: an interruption leaves the old state or the new. */
export async function saveState(path: string, state: SubmitState): Promise<void> {
  await writeFile(`${path}.tmp`, `${JSON.stringify(state)}\n`);
  await rename(`${path}.tmp`, path);
}

type ResultLine = { readonly custom_id: string; readonly line: string };

/**
 * What a results file needs to hold every line once: its complete lines kept (a line cut by an
 * interruption is dropped), and the lines whose custom_id it lacks appended, in the order given.
 */
export function mergeResults(existing: string, lines: readonly ResultLine[]): { readonly kept: string; readonly appended: readonly string[] } {
  const complete = existing.endsWith("\n") ? existing : existing.slice(0, existing.lastIndexOf("\n") + 1);
  const have = new Set<string>();
  for (const line of complete.split("\n")) {
    const id = customIdOf(line);
    if (id !== undefined) have.add(id);
  }
  return { kept: complete, appended: lines.filter((l) => !have.has(l.custom_id)).map((l) => l.line) };
}

function customIdOf(line: string): string | undefined {
  if (line.trim() === "") return undefined;
  try {
    const id = (JSON.parse(line) as { custom_id?: unknown }).custom_id;
    return typeof id === "string" ? id : undefined;
  } catch {
    return undefined;
  }
}

/** Writes the results file so that it holds every line once; returns how many lines it added. */
export async function writeResults(path: string, lines: readonly ResultLine[]): Promise<number> {
  const existing = await readFile(path, "utf8").catch(() => "");
  const { kept, appended } = mergeResults(existing, lines);
  if (kept !== existing || appended.length > 0) await writeFile(path, kept + appended.map((l) => `${l}\n`).join(""));
  return appended.length;
}

/** The custom_ids of an input file, in its order: the order results are written in. */
export function customIdsOf(input: string): string[] {
  return input.split("\n").flatMap((line) => {
    const id = customIdOf(line);
    return id === undefined ? [] : [id];
  });
}
