// First import of main.ts: tracing must start before @grpc/grpc-js is loaded.
import { startTelemetry } from "@rlhf/telemetry";

export const telemetry = startTelemetry({ serviceName: "labeling" });
