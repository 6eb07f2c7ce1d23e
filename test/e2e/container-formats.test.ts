import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pollUntil } from "../helpers/local-aws.ts";
import { componentIn, startRoutesStack, type RoutesStack } from "../helpers/routes-stack.ts";

/**
 * Every container format end to end on the embedded stack (real SDK, real servers): the routes
 * file of this test puts a TGI container behind llama-2-7b, calls llama-3-8b's vLLM container with
 * OpenAI chat bodies, and leaves llama-3-1b on LMI (OpenAI completions, vLLM's default, runs on
 * llama-3-8b in the other end-to-end tests). A job with a prompt and one with chat messages, each
 * whole and streamed, succeed on each, with the emulator answering in that format.
 */
const formats = { "llama-2-7b": "tgi", "llama-3-8b": "openai-chat", "llama-3-1b": "lmi" } as const;

let running: RoutesStack;
let api: RoutesStack["api"];

beforeAll(async () => {
  running = await startRoutesStack("e2efmt", (raw) => {
    Object.assign(componentIn(raw, "llama-2-7b-ic"), { engine: "tgi" });
    Object.assign(componentIn(raw, "llama-3-8b-ic"), { format: "openai-chat" });
  });
  ({ api } = running);
}, 240_000);

afterAll(async () => {
  await running?.stop();
});

const jobs = (model: string) => [
  { model, prompt: "Tell me about the sea.", max_tokens: 24 },
  { model, messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Tell me about the sea." }], max_tokens: 24 },
  { model, prompt: "Tell me about the sky.", max_tokens: 24, stream: true },
  { model, messages: [{ role: "user", content: "Tell me about the sky." }], max_tokens: 24, stream: true },
];

describe("container formats on the embedded stack", () => {
  it.each(Object.entries(formats))("runs prompt and chat jobs, whole and streamed, on %s's %s container", { timeout: 180_000 }, async (model) => {
    const submitted = await Promise.all(jobs(model).map((job) => api("POST", "/v1/jobs", job)));
    expect(submitted.map((s) => s.status)).toEqual([202, 202, 202, 202]);
    const finished = await Promise.all(
      submitted.map((s) =>
        pollUntil(async () => {
          const { json } = await api("GET", `/v1/jobs/${s.json.job_id as string}`);
          return ["SUCCEEDED", "FAILED", "EXPIRED", "CANCELLED"].includes(json.status) ? json : undefined;
        }, `job ${s.json.job_id as string} to finish`, 150_000, 200),
      ),
    );
    for (const job of finished) {
      expect(job, JSON.stringify(job)).toMatchObject({ status: "SUCCEEDED", result: { text: expect.stringMatching(/\S/), completion_tokens: 24 } });
    }
  });
});
