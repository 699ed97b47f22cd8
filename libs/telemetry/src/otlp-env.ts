/**
 * Where one OpenTelemetry signal is exported over OTLP, read from the standard variables the same
 * way for traces and metrics: OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT, else OTEL_EXPORTER_OTLP_ENDPOINT
 * (unset: not exported); OTEL_<SIGNAL>_EXPORTER (default otlp; `none` turns it off);
 * OTEL_EXPORTER_OTLP_<SIGNAL>_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL (default http/protobuf).
 */

/** The OTLP transports the exporters here support. */
export type OtlpProtocol = "http/protobuf" | "http/json" | "grpc";

const PROTOCOLS: readonly string[] = ["http/protobuf", "http/json", "grpc"];

/** Endpoint and protocol of a signal, or undefined when it is not exported; throws on an unknown protocol. */
export function otlpTarget(env: Record<string, string | undefined>, signal: "TRACES" | "METRICS"): { endpoint: string; protocol: OtlpProtocol } | undefined {
  const endpoint = env[`OTEL_EXPORTER_OTLP_${signal}_ENDPOINT`] || env.OTEL_EXPORTER_OTLP_ENDPOINT;
  const kinds = (env[`OTEL_${signal}_EXPORTER`] || "otlp").split(",").map((s) => s.trim());
  if (!endpoint || kinds.includes("none") || !kinds.includes("otlp")) return undefined;
  const protocol = env[`OTEL_EXPORTER_OTLP_${signal}_PROTOCOL`] || env.OTEL_EXPORTER_OTLP_PROTOCOL || "http/protobuf";
  if (!PROTOCOLS.includes(protocol)) {
    throw new Error(`OTEL_EXPORTER_OTLP_${signal}_PROTOCOL / OTEL_EXPORTER_OTLP_PROTOCOL must be http/protobuf, http/json or grpc, got "${protocol}"`);
  }
  return { endpoint, protocol: protocol as OtlpProtocol };
}
