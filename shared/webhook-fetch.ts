import type { WebhookPostResult, WebhookTransport } from "./ports.ts";

/**
 * POSTs with Node's fetch. Redirects are not followed (a 3xx is a failed delivery): a receiver's
 * answer must not send our signed request, or the function, somewhere else.
 */
export const fetchWebhookTransport: WebhookTransport = {
  async post(url, headers, body, timeoutMs): Promise<WebhookPostResult> {
    try {
      const response = await fetch(url, { method: "POST", headers, body, redirect: "manual", signal: AbortSignal.timeout(timeoutMs) });
      // The body is not read: only the status counts, and a large one would hold the function.
      await response.body?.cancel().catch(() => undefined);
      return { status: response.status };
    } catch (error) {
      const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : "";
      return { error: error instanceof Error ? `${error.name === "TimeoutError" ? `no answer in ${timeoutMs} ms` : error.message}${cause}` : String(error) };
    }
  },
};
