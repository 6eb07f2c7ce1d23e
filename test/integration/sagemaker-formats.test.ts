import { readFileSync } from "node:fs";
import { SageMakerRuntimeClient } from "@aws-sdk/client-sagemaker-runtime";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { SageMakerInvoker } from "#shared/aws/sagemaker-invoker";
import { nextCall } from "#shared/core/continuation";
import { generationInputOf } from "#shared/core/engine-codec";
import { ModelRejectedError } from "#shared/core/errors";
import { buildRouteCatalog, type Component, type RoutesFile } from "#shared/core/routes";
import { startSageMakerEmulator, type SageMakerEmulator } from "#local/sagemaker/server";
import { localClientConfig } from "../helpers/local-aws.ts";
import { caught, invokeCommand } from "../helpers/sagemaker.ts";

/**
 * Each container format through the real SDK and the invoker against the emulator serving it:
 * llama-2-7b's component as a TGI container, llama-3-8b's called with OpenAI chat bodies, and
 * llama-3-1b's LMI as shipped (OpenAI completions, llama-3-8b as shipped, is in the invoker's own
 * tests). What the container got is seen at the wire (the SDK's middleware): the chat format
 * carries the messages as they are.
 */
const file = parseYaml(readFileSync("infra/routes.yml", "utf8")) as RoutesFile;
Object.assign(file.components["llama-2-7b-ic"] ?? {}, { engine: "tgi" });
Object.assign(file.components["llama-3-8b-ic"] ?? {}, { format: "openai-chat" });
const catalog = buildRouteCatalog(file);
const component = (name: string): Component => {
  const found = catalog.components.get(name);
  if (!found) throw new Error(`no ${name}`);
  return found;
};
const chat = [{ role: "system" as const, content: "Be brief." }, { role: "user" as const, content: "Tell me about the sea." }];

describe("container formats against the SageMaker emulator", () => {
  let emulator: SageMakerEmulator;
  let invoker: SageMakerInvoker;
  let sagemaker: SageMakerRuntimeClient;
  const bodies: string[] = [];

  beforeAll(async () => {
    emulator = await startSageMakerEmulator({ catalog, port: 0, timeScale: 500 });
    const client = new SageMakerRuntimeClient({ ...localClientConfig(emulator.url), maxAttempts: 1 });
    client.middlewareStack.add(
      (next) => async (args) => {
        const body = (args.request as { body?: Uint8Array }).body;
        if (body) bodies.push(new TextDecoder().decode(body));
        return next(args);
      },
      { step: "build", name: "recordBodies" },
    );
    invoker = new SageMakerInvoker({ client, catalog });
    sagemaker = new SageMakerRuntimeClient({ ...localClientConfig(emulator.url), maxAttempts: 1 });
  });

  afterAll(async () => {
    sagemaker?.destroy();
    await emulator?.close();
  });

  it.each(["llama-2-7b-ic", "llama-3-8b-ic", "llama-3-1b-ic"])("answers %s in its format, whole and streamed, prompt and chat", async (name) => {
    const target = component(name);
    const route = [...catalog.routes.values()].find((r) => r.components.includes(target));
    if (!route) throw new Error(`no route for ${name}`);
    const inputs = [
      generationInputOf({ prompt: "Tell me about the sea.", max_tokens: 12 }, route.chat_template, target.format),
      generationInputOf({ messages: chat, max_tokens: 12 }, route.chat_template, target.format),
    ];
    const whole = await invoker.invoke(target, inputs);
    expect(whole.map((r) => (r.status === "fulfilled" ? r.value.completion_tokens : r.reason))).toEqual([12, 12]);
    const pieces: string[] = [];
    const streamed = await invoker.invokeStream(target, inputs[1] ?? inputs[0]!, (text) => pieces.push(text));
    expect(streamed).toMatchObject({ completion_tokens: 12, finish_reason: "length" });
    expect(pieces.join("")).toBe(streamed.text);
  });

  it("sends chat to a chat-format container unrendered, rendered with the route's template to the others", async () => {
    bodies.length = 0;
    const chatFormat = component("llama-3-8b-ic");
    await invoker.invoke(chatFormat, [generationInputOf({ messages: chat, max_tokens: 4 }, "llama3", chatFormat.format)]);
    expect(JSON.parse(bodies.at(-1) ?? "")).toMatchObject({ messages: chat, max_tokens: 4 });
    const tgi = component("llama-2-7b-ic");
    await invoker.invoke(tgi, [generationInputOf({ messages: chat, max_tokens: 4 }, "llama2", tgi.format)]);
    expect(JSON.parse(bodies.at(-1) ?? "").inputs).toBe("[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nTell me about the sea. [/INST]");
  });

  it("fails a job the container refuses with the container's own words: TGI's 422, vLLM's 400", async () => {
    const tgi = component("llama-2-7b-ic");
    const [tooLong] = await invoker.invoke(tgi, [{ prompt: "x", max_new_tokens: tgi.limits.max_new_tokens + 1 }]);
    expect(tooLong?.status === "rejected" && tooLong.reason).toBeInstanceOf(ModelRejectedError);
    expect(tooLong?.status === "rejected" && String(tooLong.reason.message)).toBe(`model rejected the request: Input validation error: max new tokens ${tgi.limits.max_new_tokens + 1} is over this model's limit of ${tgi.limits.max_new_tokens}`);
    const chatFormat = component("llama-3-8b-ic");
    const [refused] = await invoker.invoke(chatFormat, [{ prompt: "x", max_new_tokens: chatFormat.limits.max_new_tokens + 1 }]);
    expect(refused?.status === "rejected" && String(refused.reason.message)).toBe(`model rejected the request: max new tokens ${chatFormat.limits.max_new_tokens + 1} is over this model's limit of ${chatFormat.limits.max_new_tokens}`);
  });

  it("continues a chat-format generation with the text so far as the assistant's message (continue_final_message), and vLLM refuses it beside a generation prompt", async () => {
    // Prepare
    bodies.length = 0;
    const chatFormat = component("llama-3-8b-ic");
    const base = generationInputOf({ messages: chat, max_tokens: 8 }, "llama3", chatFormat.format);
    const next = nextCall(base, 16, { text: " The sea is", tokens: 3, calls: 1, extra_prefill_tokens: 0 }, 8);
    if (!next) throw new Error("no next call");

    // Act
    const [continued] = await invoker.invoke(chatFormat, [next]);
    const refused = await caught(sagemaker.send(invokeCommand(chatFormat, { messages: chat, max_tokens: 4, continue_final_message: true, add_generation_prompt: true })));
    const byDefault = await caught(sagemaker.send(invokeCommand(chatFormat, { messages: chat, max_tokens: 4, continue_final_message: true })));

    // Assess
    expect(continued?.status === "fulfilled" && continued.value.completion_tokens).toBe(8);
    expect(JSON.parse(bodies[0] ?? "")).toMatchObject({ messages: [...chat, { role: "assistant", content: " The sea is" }], continue_final_message: true, add_generation_prompt: false });
    expect(refused.name).toBe("ModelError");
    expect(String(refused.message)).toContain("Cannot set both `continue_final_message` and `add_generation_prompt` to True.");
    expect(String(byDefault.message)).toContain("continue_final_message and add_generation_prompt are not compatible.");
  });
});
