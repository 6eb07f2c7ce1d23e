import { z } from "zod";

/**
 * A message of the batch-control queue: `ingest` validates an OpenAI batch's input file and queues
 * its jobs; `finalize` writes its output and error files once every job ended.
 */
export const batchControlMessageSchema = z.strictObject({
  step: z.enum(["ingest", "finalize"]),
  batch_id: z.string().min(1),
});
export type BatchControlMessage = z.infer<typeof batchControlMessageSchema>;
