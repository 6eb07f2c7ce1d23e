import type { EngineMode } from "./routes.ts";

/**
 * Whether the container stops generating a request once its caller's connection closes, giving
 * its sequences and KV cache back at its next iteration. The batcher aborts a cancelled job's call
 * only where this holds (elsewhere the GPU would run on while the batcher counted the room free,
 * and it would over-admit), and the SageMaker emulator does to an abandoned request what the
 * container does. README "Cancelling a running job" gives the sources:
 * - vllm-openai: yes. vLLM's /invocations route hands the request to its completions handler,
 *   which is wrapped in `with_cancellation`: a disconnect cancels the handler, and that aborts the
 *   request in the engine.
 * - lmi-rolling, lmi-dynamic: no. DJL Serving marks the request of a closed connection cancelled,
 *   but only its job queue looks at the mark: a request still queued is skipped, one that reached
 *   the rolling batch (or the dynamic batch) runs to its last token.
 * Both assume SageMaker closes its own connection to the container when the caller's closes,
 * which AWS does not document.
 */
export function stopsWhenCallerLeaves(engine: EngineMode): boolean {
  return engine === "vllm-openai";
}
