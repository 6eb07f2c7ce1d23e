import { prefersPrometheusText, readMetrics } from "#shared/app/metrics";
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from "#shared/core/metrics-prometheus";
import { metricsSources } from "#shared/aws/metrics-sources";
import { httpFunction, json } from "#shared/http";
import { runtimeDeps } from "#shared/runtime";

const runtime = runtimeDeps();
const deps = { ...runtime, ...metricsSources(runtime.config, runtime.clients, runtime.fleet), queueName: runtime.config.queueName };

export const handler = httpFunction(() => deps.apiKeys, {
  "GET /v1/metrics": async ({ principal, event }) => {
    const snapshot = await readMetrics(deps, principal);
    if (!prefersPrometheusText(event.headers.accept)) return json(200, snapshot);
    return { statusCode: 200, headers: { "content-type": PROMETHEUS_CONTENT_TYPE }, body: await renderPrometheus(snapshot) };
  },
});
