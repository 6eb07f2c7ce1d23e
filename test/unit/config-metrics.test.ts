import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, loadMetricsSource } from "#shared/config";

describe("BATCHLINE_METRICS_SOURCE", () => {
  it("is CloudWatch unless the embedded stack says otherwise", () => {
    expect(loadMetricsSource({})).toEqual({ kind: "cloudwatch" });
    expect(loadConfig({ BATCHLINE_RESOURCE_PREFIX: "batchline-dev", BATCHLINE_WS_ENDPOINT: "https://ws.example.com/dev" }).metricsSource).toEqual({ kind: "cloudwatch" });
  });

  it("embedded reads fauxqs and the emulator at the SDK's endpoints, which it then needs", () => {
    const env = { BATCHLINE_METRICS_SOURCE: "embedded", AWS_ENDPOINT_URL_SQS: "http://127.0.0.1:9324", AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: "http://127.0.0.1:8080" };
    expect(loadMetricsSource(env)).toEqual({ kind: "embedded", sqsEndpoint: "http://127.0.0.1:9324", emulatorEndpoint: "http://127.0.0.1:8080" });
    expect(() => loadMetricsSource({ ...env, AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME: undefined })).toThrow("environment variable AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME is required");
    expect(() => loadMetricsSource({ ...env, AWS_ENDPOINT_URL_SQS: "fauxqs" })).toThrow('AWS_ENDPOINT_URL_SQS must be a URL, got "fauxqs"');
  });

  it("refuses another source, naming the variable and its values", () => {
    expect(() => loadMetricsSource({ BATCHLINE_METRICS_SOURCE: "prometheus" })).toThrow(ConfigError);
    expect(() => loadMetricsSource({ BATCHLINE_METRICS_SOURCE: "prometheus" })).toThrow('BATCHLINE_METRICS_SOURCE must be cloudwatch or embedded, got "prometheus"');
  });
});
