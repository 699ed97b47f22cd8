// First import of main.ts: tracing must start before @grpc/grpc-js is loaded.
import { recentRunTraces, startTelemetry } from "@rlhf/telemetry";

// Without an OTLP endpoint the runs' spans go to their run folders (traces.jsonl); the recent
// ones are also kept in memory for the report's timeline, wherever they are exported.
export const telemetry = startTelemetry({ serviceName: "ppo-coordinator", runFolderTraces: true, spanProcessors: [recentRunTraces] });
