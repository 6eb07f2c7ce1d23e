import { readFile } from "node:fs/promises";
import type { Api, BatchObject } from "./client.ts";
import { CliError, EXIT, exitCodeOfBatch, type ExitCode } from "./exit-codes.ts";
import { Progress } from "./progress.ts";
import { customIdsOf, loadState, saveState, sha256Of, statePathOf, writeResults } from "./resume.ts";
import type { Settings } from "./settings.ts";
import { isTerminalBatch, watchBatch } from "./watch.ts";

export type Output = { readonly json: boolean; readonly terminal: boolean };

/** What a command prints on stdout: the batch as JSON for scripts, a line for people. */
function report(output: Output, batch: BatchObject, extra: Record<string, unknown> = {}): void {
  if (output.json) {
    process.stdout.write(`${JSON.stringify({ ...batch, ...extra })}\n`);
    return;
  }
  const counts = batch.request_counts;
  const tally = counts ? `: ${counts.completed} of ${counts.total} completed, ${counts.failed} failed` : "";
  const where = Object.entries(extra).map(([k, v]) => `, ${k.replaceAll("_", " ")} ${String(v)}`).join("");
  process.stdout.write(`batch ${batch.id} ${batch.status}${tally}${where}\n`);
  for (const error of batch.errors?.data ?? []) process.stdout.write(`  line ${error.line ?? "?"}: ${error.code}: ${error.message}\n`);
}

/** The exit status of a batch that may still run: 0 for one left running on purpose. */
const exitOf = (batch: BatchObject): ExitCode => exitCodeOfBatch(batch) ?? EXIT.ok;

export type SubmitOptions = {
  readonly endpoint: string;
  readonly out: string;
  readonly wait: boolean;
  readonly metadata: Record<string, string>;
};

/**
 * `batchline submit FILE.jsonl`: upload, create, follow, write the results. Resumable: the
 * state beside the results names the file and the batch already made of this very input, so a
 * second run after an interruption goes on with them, and writes only the lines still missing.
 */
export async function submitFile(api: Api, settings: Settings, path: string, options: SubmitOptions, output: Output): Promise<ExitCode> {
  const inputSha256 = await sha256Of(path);
  const statePath = statePathOf(options.out);
  const state = (await loadState(statePath, inputSha256)) ?? { input_sha256: inputSha256 };
  const progress = new Progress(output);
  let fileId = state.file_id;
  if (fileId === undefined) {
    fileId = (await api.uploadFile(path)).id;
    await saveState(statePath, { ...state, file_id: fileId });
  }
  let batchId = state.batch_id;
  if (batchId === undefined) {
    const created = await api.json<BatchObject>("POST", "/v1/batches", { input_file_id: fileId, endpoint: options.endpoint, completion_window: "24h", metadata: options.metadata });
    batchId = created.id;
    await saveState(statePath, { input_sha256: inputSha256, file_id: fileId, batch_id: batchId });
  } else {
    progress.note(`resuming batch ${batchId} (${statePath})`);
  }
  if (!options.wait) {
    const batch = await api.json<BatchObject>("GET", `/v1/batches/${batchId}`);
    report(output, batch);
    return EXIT.ok;
  }
  const batch = await watchBatch(api, settings, batchId, progress);
  const written = await saveResults(api, batch, options.out, customIdsOf(await readFile(path, "utf8")));
  report(output, batch, { results: options.out, lines_written: written });
  return exitOf(batch);
}

/** `batchline results ID`: the batch's output and error lines, in input order when the input is known. */
export async function results(api: Api, batchId: string, out: string, output: Output): Promise<ExitCode> {
  const batch = await api.json<BatchObject>("GET", `/v1/batches/${batchId}`);
  if (!isTerminalBatch(batch.status)) throw new CliError(`batch ${batchId} is ${batch.status}: its results are written when it ends (batchline watch ${batchId})`, EXIT.usage);
  const written = await saveResults(api, batch, out, undefined);
  report(output, batch, { results: out, lines_written: written });
  return exitOf(batch);
}

/** `batchline status ID` and `batchline watch ID`. */
export async function status(api: Api, settings: Settings, batchId: string, follow: boolean, output: Output): Promise<ExitCode> {
  const batch = follow ? await watchBatch(api, settings, batchId, new Progress(output)) : await api.json<BatchObject>("GET", `/v1/batches/${batchId}`);
  report(output, batch);
  return follow ? exitOf(batch) : EXIT.ok;
}

export async function cancel(api: Api, batchId: string, output: Output): Promise<ExitCode> {
  report(output, await api.json<BatchObject>("POST", `/v1/batches/${batchId}/cancel`));
  return EXIT.ok;
}

/** `batchline jobs ID`: each line's job and its status, one JSON line each, page by page. */
export async function jobs(api: Api, batchId: string): Promise<ExitCode> {
  let cursor: string | undefined;
  do {
    const query = cursor === undefined ? "" : `?cursor=${encodeURIComponent(cursor)}`;
    const page = await api.page(`/v1/batches/${batchId}/results${query}`);
    for (const line of page.text.split("\n")) {
      if (line.trim() === "") continue;
      const { custom_id, job_id, status } = JSON.parse(line) as { custom_id: string; job_id: string; status: string };
      process.stdout.write(`${JSON.stringify({ custom_id, job_id, status })}\n`);
    }
    cursor = page.next;
  } while (cursor !== undefined);
  return EXIT.ok;
}

async function saveResults(api: Api, batch: BatchObject, out: string, order: readonly string[] | undefined): Promise<number> {
  const lines: { custom_id: string; line: string }[] = [];
  for (const fileId of [batch.output_file_id, batch.error_file_id]) {
    if (!fileId) continue;
    for (const line of (await api.text(`/v1/files/${fileId}/content`)).split("\n")) {
      if (line.trim() !== "") lines.push({ custom_id: (JSON.parse(line) as { custom_id: string }).custom_id, line });
    }
  }
  if (order) {
    const rank = new Map(order.map((id, i) => [id, i]));
    lines.sort((a, b) => (rank.get(a.custom_id) ?? Infinity) - (rank.get(b.custom_id) ?? Infinity));
  }
  return writeResults(out, lines);
}
