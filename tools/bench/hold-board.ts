import { DynamoDBClient } from "@aws-sdk/client-dynamodb";
import { DynamoDBDocumentClient } from "@aws-sdk/lib-dynamodb";
import { DynamoDbQueueBoardStore } from "#shared/aws/dynamodb-queue-board";
import { localClientConfig } from "#local/aws";
import type { Stack } from "#local/stack";

/**
 * What the static-batch hold measured on a run's route, from its queue board once the run ended:
 * the latency factor (the copies' static batches over the latency model) and the arrival rate of
 * the last closed window. Null where nothing was measured (a rolling engine, measured_hold off).
 */
export type HoldMeasured = { readonly latency_factor: number | null; readonly arrivals_per_second: number | null };

export async function holdMeasured(stack: Stack, model: string): Promise<HoldMeasured> {
  const client = DynamoDBDocumentClient.from(new DynamoDBClient(localClientConfig(stack.endpoints.dynamodb)));
  try {
    const board = await new DynamoDbQueueBoardStore({ client, tableName: `${stack.prefix}-queue-board` }).read(model);
    return {
      latency_factor: board.latency?.factor ?? null,
      arrivals_per_second: board.rate?.arrivalsPerSecond ?? null,
    };
  } finally {
    client.destroy();
  }
}
