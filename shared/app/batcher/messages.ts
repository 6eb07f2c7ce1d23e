import { jobMessageSchema, type JobMessage } from "../../core/jobs.ts";
import type { PackItem } from "../../core/packing.ts";
import { promptTextOf } from "../../core/prompt.ts";
import type { ChatTemplateName } from "../../core/routes.ts";

export function parseJobMessage(body: string): JobMessage | undefined {
  try {
    const parsed = jobMessageSchema.safeParse(JSON.parse(body));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** The message's body, saying since when the job has waited for warming (undefined: it is not waiting). */
export function withWarmingSince(message: JobMessage, since: string | undefined): string {
  const { warming_since: _, ...rest } = message;
  return JSON.stringify(since === undefined ? rest : { ...rest, warming_since: since });
}

/** A job of a route whose chat template is `chatTemplate`, as the packer sees it. */
export function toPackItem(m: JobMessage, chatTemplate: ChatTemplateName): PackItem {
  return {
    id: m.job_id,
    promptTokens: m.prompt_tokens,
    maxNewTokens: m.request.max_tokens,
    payloadBytes: Buffer.byteLength(promptTextOf(m.request, chatTemplate), "utf8"),
    priority: m.priority,
    deadlineMs: m.deadline === undefined ? undefined : Date.parse(m.deadline),
    submittedMs: Date.parse(m.submitted_at),
  };
}
