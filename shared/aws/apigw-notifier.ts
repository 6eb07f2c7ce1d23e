import { PostToConnectionCommand, type ApiGatewayManagementApiClient } from "@aws-sdk/client-apigatewaymanagementapi";
import type { ServerEvent } from "../core/events.ts";
import type { Notifier } from "../ports.ts";
import { translateConnectionError } from "./errors.ts";

export class ApiGatewayNotifier implements Notifier {
  readonly #client: ApiGatewayManagementApiClient;

  constructor(options: { client: ApiGatewayManagementApiClient }) {
    this.#client = options.client;
  }

  async post(connectionId: string, event: ServerEvent): Promise<void> {
    try {
      await this.#client.send(new PostToConnectionCommand({ ConnectionId: connectionId, Data: new TextEncoder().encode(JSON.stringify(event)) }));
    } catch (error) {
      throw translateConnectionError(error, connectionId);
    }
  }
}
