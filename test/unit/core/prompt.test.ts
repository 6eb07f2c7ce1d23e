import llama3 from "llama3-tokenizer-js";
import { describe, expect, it } from "vitest";
import { LLAMA3_BOS, promptTextOf, renderChat, renderChatContinuing, renderChatMl, renderLlama2Chat, renderLlama3Chat, type ChatMessage } from "#shared/core/prompt";
import { checkJob } from "#shared/core/submission";
import { tokenCounter } from "#shared/core/tokens";
import { defaultCatalog } from "../../helpers/fakes.ts";

const chat: ChatMessage[] = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "  Hi there\n" },
  { role: "assistant", content: "Hello." },
  { role: "user", content: "Name a prime." },
];

describe("the Llama-2 chat template", () => {
  it("puts the system prompt in the first instruction", () => {
    expect(renderLlama2Chat([{ role: "system", content: "Be brief." }, { role: "user", content: "Hi" }])).toBe("[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST]");
  });

  it("renders a user message alone without a system block", () => {
    expect(renderLlama2Chat([{ role: "user", content: " Hi " }])).toBe("[INST] Hi [/INST]");
  });

  it("renders turns in order, answers between instructions, contents trimmed", () => {
    expect(renderLlama2Chat(chat)).toBe("[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\nHi there [/INST] Hello. [INST] Name a prime. [/INST]");
  });

  it("joins several system messages into the one system block", () => {
    expect(renderLlama2Chat([{ role: "system", content: "A." }, { role: "user", content: "Hi" }, { role: "system", content: "B." }])).toBe(
      "[INST] <<SYS>>\nA.\nB.\n<</SYS>>\n\nHi [/INST]",
    );
  });
});

describe("the Llama 3 chat template", () => {
  // Meta-Llama-3-8B-Instruct's tokenizer_config.json chat_template, add_generation_prompt on:
  // bos_token, then per message '<|start_header_id|>' + role + '<|end_header_id|>\n\n' + content | trim + '<|eot_id|>',
  // then '<|start_header_id|>assistant<|end_header_id|>\n\n'.
  const template = (messages: readonly ChatMessage[]) => LLAMA3_BOS + renderLlama3Chat(messages);

  it("renders a system prompt and a user message, then the assistant's header", () => {
    expect(template([{ role: "system", content: "Be brief." }, { role: "user", content: "Hi" }])).toBe(
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    );
  });

  it("renders a multi-turn chat in order, contents trimmed", () => {
    expect(template(chat)).toBe(
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou are terse.<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\nName a prime.<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    );
  });

  it("keeps a system message where it stands, as the template does", () => {
    expect(renderLlama3Chat([{ role: "user", content: "Hi" }, { role: "system", content: "Now be brief." }])).toBe(
      "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>" +
        "<|start_header_id|>system<|end_header_id|>\n\nNow be brief.<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\n",
    );
  });

  it("leaves the BOS token to the tokenizer: counted once, as the container tokenizes the text", () => {
    const counter = tokenCounter("llama3");
    const text = renderLlama3Chat([{ role: "user", content: "Hello" }]);
    expect(text.startsWith(LLAMA3_BOS)).toBe(false);
    // <|begin_of_text|> <|start_header_id|> user <|end_header_id|> \n\n Hello <|eot_id|> <|start_header_id|> assistant <|end_header_id|> \n\n
    expect(llama3.encode(text, { bos: true, eos: false })).toEqual([128000, 128006, 882, 128007, 271, 9906, 128009, 128006, 78191, 128007, 271]);
    expect(counter.countPrompt(text)).toBe(11);
    for (const messages of [chat, [{ role: "user", content: "Hello" }] as const]) {
      const rendered = renderLlama3Chat(messages);
      const tokens = llama3.encode(LLAMA3_BOS + rendered, { bos: false, eos: false });
      expect(tokens.filter((t) => t === 128000)).toHaveLength(1);
      expect(counter.countPrompt(rendered)).toBe(tokens.length);
    }
  });
});

describe("the route's chat template", () => {
  it("is chosen by the route's tokenizer", () => {
    expect(renderChat(chat, "llama2")).toBe(renderLlama2Chat(chat));
    expect(renderChat(chat, "llama3")).toBe(renderLlama3Chat(chat));
    expect(promptTextOf({ messages: chat }, "llama3")).toBe(renderLlama3Chat(chat));
    expect(promptTextOf({ prompt: "As is." }, "llama3")).toBe("As is.");
  });

  it("renders and counts a Llama-3 route's chat at submission", () => {
    const catalog = defaultCatalog();
    const now = new Date("2026-11-27T12:00:00Z");
    for (const model of ["llama-3-8b", "llama-3-1b"]) {
      const checked = checkJob({ model, max_tokens: 8, messages: chat }, catalog, now);
      expect(checked.promptText).toBe(renderLlama3Chat(chat));
      expect(checked.promptTokens).toBe(llama3.encode(LLAMA3_BOS + renderLlama3Chat(chat), { bos: false, eos: false }).length);
    }
    expect(checkJob({ model: "llama-2-7b", max_tokens: 8, messages: chat }, catalog, now).promptText).toBe(renderLlama2Chat(chat));
  });
});

describe("renderChatMl", () => {
  it("renders ChatML, the generic template a route can name, ending with the assistant's turn", () => {
    const chat: ChatMessage[] = [{ role: "system", content: "Be brief." }, { role: "user", content: "Hi" }];
    expect(renderChatMl(chat)).toBe("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
    expect(renderChat(chat, "chatml")).toBe(renderChatMl(chat));
  });
});

describe("renderChatContinuing (Hugging Face's continue_final_message)", () => {
  it("cuts the rendered chat right after the final assistant message's text, as the template wrote it, so the model goes on within that turn", () => {
    // Prepare
    const prefilled: ChatMessage[] = [{ role: "user", content: "Name a prime." }, { role: "assistant", content: "Seven, and then " }];

    // Act & Assess
    expect(renderChatContinuing(prefilled, "llama3")).toBe("<|start_header_id|>user<|end_header_id|>\n\nName a prime.<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nSeven, and then");
    expect(renderChatContinuing(prefilled, "chatml")).toBe("<|im_start|>user\nName a prime.<|im_end|>\n<|im_start|>assistant\nSeven, and then");
    expect(renderChatContinuing(prefilled, "llama2")).toBe("[INST] Name a prime. [/INST] Seven, and then");
  });
});

