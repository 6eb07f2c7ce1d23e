import { assertMappingAccepted } from "./event-source-mapping.ts";
import type { MappingOverrides, QueueAttributeOverrides } from "./stack-options.ts";
import type { EventSourceMappingDefinition, QueueDefinition } from "./template.ts";

/**
 * The template's mappings with `overrides` (by queue name) applied, each checked as AWS's
 * CreateEventSourceMapping checks it (EventSourceMappingRefused, in AWS's words, naming the
 * mapping as CloudFormation does); an override for no mapping is an error.
 */
export function applyMappingOverrides(
  mappings: readonly EventSourceMappingDefinition[],
  overrides: MappingOverrides = {},
): EventSourceMappingDefinition[] {
  for (const queueName of Object.keys(overrides)) {
    if (!mappings.some((m) => m.queueName === queueName)) throw new Error(`mappingOverrides: no event source mapping reads queue ${queueName}`);
  }
  return mappings.map((m) => {
    const override = overrides[m.queueName];
    const merged = override ? { ...m, ...override } : m;
    if (override) {
      // The API takes integers only; the ranges are AWS's checks, below.
      for (const key of ["batchSize", "maximumBatchingWindowSeconds", "maximumConcurrency"] as const) {
        const value = merged[key];
        if (value !== undefined && !Number.isInteger(value)) throw new Error(`mappingOverrides: ${m.queueName}: ${key} must be a whole number, got ${value}`);
      }
    }
    assertMappingAccepted(merged, `CREATE_FAILED: ${m.logicalId} (AWS::Lambda::EventSourceMapping) for queue ${m.queueName}`);
    return merged;
  });
}

/** The template's queues with `overrides` (by queue name) on their attributes; an override for no queue is an error. */
export function applyQueueAttributeOverrides(queues: readonly QueueDefinition[], overrides: QueueAttributeOverrides = {}): QueueDefinition[] {
  for (const queueName of Object.keys(overrides)) {
    if (!queues.some((q) => q.name === queueName)) throw new Error(`queueAttributeOverrides: no queue ${queueName} in the template`);
  }
  return queues.map((q) => {
    const override = overrides[q.name];
    if (!override) return q;
    if ("RedrivePolicy" in override) throw new Error(`queueAttributeOverrides: ${q.name}: the RedrivePolicy comes from the template`);
    return { ...q, attributes: { ...q.attributes, ...override } };
  });
}
