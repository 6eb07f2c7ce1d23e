import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, loadWebhookSettings } from "#shared/config";

describe("webhook settings", () => {
  it("default to a 30 s first retry and https only", () => {
    expect(loadWebhookSettings({})).toEqual({ firstRetrySeconds: 30, allowLoopback: false });
    expect(loadWebhookSettings({ BATCHLINE_WEBHOOK_FIRST_RETRY_SECONDS: "5", BATCHLINE_ALLOW_LOOPBACK_WEBHOOKS: "true" })).toEqual({ firstRetrySeconds: 5, allowLoopback: true });
  });

  it("refuse what they cannot mean, naming the variable", () => {
    expect(() => loadWebhookSettings({ BATCHLINE_WEBHOOK_FIRST_RETRY_SECONDS: "0" })).toThrow(ConfigError);
    expect(() => loadWebhookSettings({ BATCHLINE_WEBHOOK_FIRST_RETRY_SECONDS: "901" })).toThrow(/BATCHLINE_WEBHOOK_FIRST_RETRY_SECONDS/);
    expect(() => loadWebhookSettings({ BATCHLINE_ALLOW_LOOPBACK_WEBHOOKS: "yes" })).toThrow(/BATCHLINE_ALLOW_LOOPBACK_WEBHOOKS/);
  });

  it("name the webhooks queue and the endpoints table under the prefix", () => {
    const config = loadConfig({ BATCHLINE_RESOURCE_PREFIX: "batchline-dev", BATCHLINE_WS_ENDPOINT: "https://ws.example.com/dev" });
    expect(config.webhookQueueName).toBe("batchline-dev-webhooks");
    expect(config.tables.webhookEndpoints).toBe("batchline-dev-webhook-endpoints");
  });
});
