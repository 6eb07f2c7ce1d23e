import type { ChatTemplateName } from "./routes.ts";

/** A chat message as clients send it (OpenAI shape). */
export type ChatMessage = { readonly role: "system" | "user" | "assistant"; readonly content: string };

/**
 * The engine receives one string either way (a prompt, or messages rendered here), so this is the
 * only place chat is special. Each chat template leaves out the model's BOS token: the engine's
 * tokenizer adds it to every prompt string (Hugging Face tokenizers, so vLLM and LMI, encode a
 * prompt with add_special_tokens), and the token counter counts it (TokenCounter.countPrompt,
 * BOS included). Written into the text as well, the container would see two.
 */

/**
 * The Llama-2 chat template, the format the default route's model was tuned on:
 * `[INST] <<SYS>>\n{system}\n<</SYS>>\n\n{user} [/INST] {assistant} [INST] {user} [/INST]`.
 */
export function renderLlama2Chat(messages: readonly ChatMessage[]): string {
  const system = messages.filter((m) => m.role === "system").map((m) => m.content).join("\n");
  const turns = messages.filter((m) => m.role !== "system");
  let out = "";
  let pendingSystem = system.length > 0 ? `<<SYS>>\n${system}\n<</SYS>>\n\n` : "";
  for (const turn of turns) {
    if (turn.role === "user") {
      out += `[INST] ${pendingSystem}${turn.content.trim()} [/INST]`;
      pendingSystem = "";
    } else {
      out += ` ${turn.content.trim()} `;
    }
  }
  return out;
}

/** Llama 3's BOS token: the first token of every Llama-3 prompt, added by the tokenizer. */
export const LLAMA3_BOS = "<|begin_of_text|>";

/**
 * The Llama 3 instruct chat template (`chat_template` of Meta-Llama-3-8B-Instruct's
 * tokenizer_config.json), with the generation prompt: every message in order, system ones where
 * they stand, as `<|start_header_id|>{role}<|end_header_id|>\n\n{content, trimmed}<|eot_id|>`,
 * then `<|start_header_id|>assistant<|end_header_id|>\n\n` for the answer. The template begins
 * with `<|begin_of_text|>`, the BOS token, which is left to the tokenizer (see above): the tokens
 * are those of `LLAMA3_BOS + renderLlama3Chat(messages)`, BOS once.
 *
 * Llama 3.1 and 3.2's Hugging Face templates also always open with a system message that states a
 * knowledge cut-off and a date; this renders the plain Llama 3 form, which those models take too.
 */
export function renderLlama3Chat(messages: readonly ChatMessage[]): string {
  let out = "";
  for (const m of messages) out += `<|start_header_id|>${m.role}<|end_header_id|>\n\n${m.content.trim()}<|eot_id|>`;
  return `${out}<|start_header_id|>assistant<|end_header_id|>\n\n`;
}

/**
 * ChatML, the generic template a route can name (Qwen's, and many fine-tunes'): every message as
 * `<|im_start|>{role}\n{content}<|im_end|>\n`, then `<|im_start|>assistant\n` for the answer. It
 * has no BOS token of its own.
 */
export function renderChatMl(messages: readonly ChatMessage[]): string {
  let out = "";
  for (const m of messages) out += `<|im_start|>${m.role}\n${m.content}<|im_end|>\n`;
  return `${out}<|im_start|>assistant\n`;
}

/** A route's chat template (routes.yml `chat_template`, by default its tokenizer's family). */
const chatTemplates: Record<ChatTemplateName, (messages: readonly ChatMessage[]) => string> = {
  llama2: renderLlama2Chat,
  llama3: renderLlama3Chat,
  chatml: renderChatMl,
};

/** Messages rendered with a chat template. */
export function renderChat(messages: readonly ChatMessage[], template: ChatTemplateName): string {
  return chatTemplates[template](messages);
}

/**
 * The chat as a container renders it for Hugging Face's assistant prefill (`continue_final_message`,
 * transformers' apply_chat_template): rendered as it stands, then cut right after the final
 * message's text as the template wrote it (trimmed), so that the model goes on within that message
 * instead of closing it and opening a new turn.
 */
export function renderChatContinuing(messages: readonly ChatMessage[], template: ChatTemplateName): string {
  const rendered = renderChat(messages, template);
  const text = messages.at(-1)?.content.trim() ?? "";
  const at = text === "" ? -1 : rendered.lastIndexOf(text);
  return at < 0 ? rendered : rendered.slice(0, at + text.length);
}

/** The text of a job with this chat template: its prompt, or its messages rendered. */
export function promptTextOf(
  request: { readonly prompt?: string | undefined; readonly messages?: readonly ChatMessage[] | undefined },
  template: ChatTemplateName,
): string {
  return request.prompt ?? renderChat(request.messages ?? [], template);
}
