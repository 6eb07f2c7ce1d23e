/** A chat message as clients send it (OpenAI shape). */
export type ChatMessage = { readonly role: "system" | "user" | "assistant"; readonly content: string };

/**
 * Renders chat messages with the Llama-2 chat template, the format the default route's model was
 * tuned on. The engine receives one string either way, so this is the only place chat is special.
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

/** The text the engine receives for a job: its prompt, or its messages rendered. */
export function promptTextOf(request: { readonly prompt?: string | undefined; readonly messages?: readonly ChatMessage[] | undefined }): string {
  return request.prompt ?? renderLlama2Chat(request.messages ?? []);
}
