import { describe, expect, it } from "vitest";
import { processDelivery } from "#shared/app/process-delivery";
import { submitJob } from "#shared/app/submit";
import { renderLlama2Chat, renderLlama3Chat, type ChatMessage } from "#shared/core/prompt";
import { memoryDeps } from "../../helpers/fakes.ts";

const chat: ChatMessage[] = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "Name a prime." },
];

describe("a chat job's prompt on the GPU", () => {
  it.each([
    ["llama-2-7b", renderLlama2Chat(chat)],
    ["llama-3-8b", renderLlama3Chat(chat)],
    ["llama-3-1b", renderLlama3Chat(chat)],
  ])("is rendered with %s's chat template, the text whose tokens were counted at submission", async (model, text) => {
    const deps = memoryDeps();
    const { job } = await submitJob(deps, "acme", { model, messages: chat, max_tokens: 8 });
    await processDelivery(deps, deps.queue.takeDelivery(model), { topUpUntil: new Date(deps.clock.now().getTime() + 60_000) });
    expect(deps.invoker.calls.flatMap((c) => c.inputs.map((i) => i.prompt))).toEqual([text]);
    expect(deps.jobs.jobs.get(job.job_id)).toMatchObject({ status: "SUCCEEDED", result: { prompt_tokens: job.prompt_tokens } });
  });
});
