import { readFileSync } from "node:fs";
import { parse as parseYaml } from "yaml";
import { describe, expect, it } from "vitest";
import { submitBatch, submitJob } from "#shared/app/submit";
import { connect, handleClientMessage } from "#shared/app/websocket";
import { ValidationError } from "#shared/core/errors";
import { buildRouteCatalog } from "#shared/core/routes";
import { memoryDeps } from "../../helpers/fakes.ts";

/**
 * The `stream` field on the three ways in: POST /v1/jobs (submitJob), the WebSocket submit frame,
 * and a line of a batch file. A route whose components all make dynamic batches cannot stream.
 */
function dynamicOnly() {
  const raw = parseYaml(readFileSync("infra/routes.yml", "utf8"));
  raw.components["llama-2-7b-ic"].engine = "lmi-dynamic";
  return buildRouteCatalog(raw);
}

const job = (extra: object) => ({ model: "llama-2-7b", prompt: "Hi", max_tokens: 4, ...extra });
const DYNAMIC = "model llama-2-7b runs dynamic batches (engine lmi-dynamic), which cannot stream; leave stream out or set it to false";

type Deps = ReturnType<typeof memoryDeps>;
const stored = (deps: Deps) => deps.jobs.jobs.size + deps.queue.sent.length;

async function refusedBy(deps: Deps, submission: Promise<unknown>) {
  const error = await submission.then(() => undefined, (e: unknown) => e);
  if (!(error instanceof ValidationError)) throw new Error(`expected a ValidationError, got ${String(error)}`);
  return { message: error.message, field: error.field, stored: stored(deps) };
}

/** How each way in refuses a job: the error's message and field, and how much was stored. */
const paths = {
  async http(deps: Deps, body: object) {
    return refusedBy(deps, submitJob(deps, "acme", body));
  },
  async websocket(deps: Deps, body: object) {
    deps.apiKeys.add("key-acme", "acme");
    await connect(deps, "c1", { token: "key-acme" });
    await handleClientMessage(deps, "c1", JSON.stringify({ action: "submit", job: body, request_id: "r1" }));
    const [event] = deps.notifier.eventsFor("c1");
    if (event?.type !== "error") throw new Error(`expected an error event, got ${JSON.stringify(event)}`);
    return { message: event.error.message, field: event.error.field, stored: stored(deps) };
  },
  async batchLine(deps: Deps, body: object) {
    const file = [{ custom_id: "ok", body: job({}) }, { custom_id: "x", body }].map((line) => JSON.stringify(line)).join("\n");
    return refusedBy(deps, submitBatch(deps, "acme", file));
  },
};

const oneJob = (rule: string) => ({ message: `stream: ${rule}`, field: "stream", stored: 0 });
const expected = {
  http: oneJob,
  websocket: oneJob,
  batchLine: (rule: string) => ({ message: `line 2: body.stream: ${rule}`, field: "line 2.body.stream", stored: 0 }),
};

describe("the stream field", () => {
  it.each(Object.keys(paths) as (keyof typeof paths)[])("%s: refuses stream on a route that only makes dynamic batches, naming the field", async (path) => {
    // Act
    const refused = await paths[path](memoryDeps(dynamicOnly()), job({ stream: true }));

    // Assess
    expect(refused).toEqual(expected[path](DYNAMIC));
  });

  it.each(Object.keys(paths) as (keyof typeof paths)[])("%s: refuses a stream that is not true or false", async (path) => {
    for (const value of ["true", 1, null]) {
      // Act
      const refused = await paths[path](memoryDeps(), job({ stream: value }));

      // Assess
      expect(refused).toEqual(expected[path]("must be true or false"));
    }
  });

  it("takes stream: false on a dynamic-only route, and stream: true on a streaming one, keeping it on the job and its message", async () => {
    // Prepare
    const dynamic = memoryDeps(dynamicOnly());
    const rolling = memoryDeps();

    // Act
    const { job: unstreamed } = await submitJob(dynamic, "acme", job({ stream: false }));
    const { job: streamed } = await submitJob(rolling, "acme", job({ stream: true }));

    // Assess
    expect(unstreamed.request.stream).toBeUndefined();
    expect(streamed.request.stream).toBe(true);
    expect(rolling.queue.sent[0]?.message.request.stream).toBe(true);
  });
});
