/**
 * Configuration of the supporting stack, as objects (written as YAML into ConfigMaps for
 * Kubernetes and as files under deploy/compose/ for Docker Compose):
 * - the OpenTelemetry collector: OTLP in (gRPC 4317, HTTP 4318) from every service, batched, OTLP
 *   out to Jaeger; its own health on 13133;
 * - Prometheus: every service's METRICS_PORT /metrics (Kubernetes: pods annotated
 *   prometheus.io/scrape in the namespace; Compose: the services' DNS names, every replica);
 * - Grafana: the Prometheus data source and the dashboard folder provisioned at start.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { METRICS_PORT, NAMESPACE, SERVICES, STACK, TOKENS_DIR } from "./topology";

/** The collector's configuration. */
export function collectorConfig(): Record<string, unknown> {
  const c = STACK.collector;
  return {
    extensions: { health_check: { endpoint: `0.0.0.0:${c.health}` } },
    receivers: {
      otlp: { protocols: { grpc: { endpoint: `0.0.0.0:${c.otlpGrpc}` }, http: { endpoint: `0.0.0.0:${c.otlpHttp}` } } },
    },
    processors: {
      memory_limiter: { check_interval: "1s", limit_percentage: 80, spike_limit_percentage: 20 },
      batch: { timeout: "2s", send_batch_size: 512 },
    },
    exporters: {
      "otlp/jaeger": { endpoint: `${STACK.jaeger.name}:${STACK.jaeger.otlpGrpc}`, tls: { insecure: true } },
    },
    service: {
      extensions: ["health_check"],
      pipelines: { traces: { receivers: ["otlp"], processors: ["memory_limiter", "batch"], exporters: ["otlp/jaeger"] } },
    },
  };
}

/** Prometheus on Kubernetes: the pods of the namespace that ask to be scraped (prometheus.io/* annotations). */
export function prometheusK8sConfig(): Record<string, unknown> {
  return {
    global: { scrape_interval: "15s", evaluation_interval: "15s" },
    scrape_configs: [
      {
        job_name: "rlhf-pods",
        kubernetes_sd_configs: [{ role: "pod", namespaces: { names: [NAMESPACE] } }],
        // The services accept scrapes with a viewer token only (the rlhf-tokens Secret's viewer key,
        // mounted into Prometheus at the same path as in the services).
        authorization: { type: "Bearer", credentials_file: `${TOKENS_DIR}/viewer` },
        relabel_configs: [
          { source_labels: ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"], action: "keep", regex: "true" },
          { source_labels: ["__meta_kubernetes_pod_annotation_prometheus_io_path"], action: "replace", target_label: "__metrics_path__", regex: "(.+)" },
          {
            source_labels: ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
            action: "replace",
            regex: "([^:]+)(?::\\d+)?;(\\d+)",
            replacement: "$1:$2",
            target_label: "__address__",
          },
          { source_labels: ["__meta_kubernetes_pod_label_app_kubernetes_io_name"], target_label: "app" },
          { source_labels: ["__meta_kubernetes_pod_name"], target_label: "pod" },
        ],
      },
    ],
  };
}

/** Prometheus under Compose: each service name resolves to all its containers (replicas). */
export function prometheusComposeConfig(): Record<string, unknown> {
  return {
    global: { scrape_interval: "15s", evaluation_interval: "15s" },
    scrape_configs: SERVICES.map((s) => ({
      job_name: s.name,
      dns_sd_configs: [{ names: [s.name], type: "A", port: METRICS_PORT, refresh_interval: "15s" }],
    })),
  };
}

/** Grafana's data source: the in-stack Prometheus (uid "prometheus", the default). */
export function grafanaDatasources(): Record<string, unknown> {
  return {
    apiVersion: 1,
    datasources: [{ name: "Prometheus", uid: "prometheus", type: "prometheus", access: "proxy", url: `http://${STACK.prometheus.name}:${STACK.prometheus.port}`, isDefault: true, editable: false }],
  };
}

/** Grafana's dashboard provider: every JSON file of `dir`. */
export function grafanaDashboardProvider(dir: string): Record<string, unknown> {
  return {
    apiVersion: 1,
    providers: [{ name: "rlhf", folder: "RLHF", type: "file", disableDeletion: true, allowUiUpdates: false, options: { path: dir } }],
  };
}

/** Where Grafana reads the dashboard JSON files (provisioned, read-only). */
export const GRAFANA_DASHBOARDS_DIR = "/etc/grafana/dashboards";

/** deploy/ (this package's folder). */
export const DEPLOY_DIR = join(__dirname, "..");
/** The Grafana dashboard of the observability issue, relative to deploy/. */
export const DASHBOARD_FILE = "observability/grafana/rlhf-dashboard.json";

/** The dashboard's JSON text (as committed), or undefined while it does not exist. */
export function readDashboard(deployDir = DEPLOY_DIR): string | undefined {
  try {
    return readFileSync(join(deployDir, DASHBOARD_FILE), "utf8");
  } catch {
    return undefined;
  }
}
