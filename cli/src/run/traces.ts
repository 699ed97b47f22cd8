/**
 * Where the traces of a session's five services go. When the user set an OTLP endpoint
 * (OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), the children inherit it
 * and every span goes there. Otherwise the CLI hosts a loopback OTLP/HTTP (JSON) receiver, points
 * the children's trace exporters at it, and appends what it gets to each run's folder:
 * `<runs dir>/<run id>/traces.jsonl`, one ExportTraceServiceRequest per line (@rlhf/telemetry's
 * run-traces.ts). Writes are queued within a bound and never block the receiver; drops and failed
 * writes are counted and reported at the end, never fatal.
 */
import { RunFolderTraceSink, LineAppender, startOtlpReceiver, type OtlpReceiver, type SinkStats } from "@rlhf/telemetry";

/** What {@link startTraceCollector} set up. */
export interface TraceCollector {
  /** Environment for every child (empty when the user's own settings apply). */
  env: Record<string, string>;
  /** Where traces go, for people: "run folders (…/traces.jsonl)", "OTLP endpoint http://…", "off". */
  destination: string;
  /** Stops the receiver after the children stopped (they flush on SIGTERM); what it wrote, if it ran. */
  close(): Promise<SinkStats | undefined>;
}

/** True when the environment names an OTLP trace endpoint or turns trace export off: the CLI then collects nothing. */
export function userTraceSettings(env: Readonly<Record<string, string | undefined>>): { endpoint?: string; off: boolean } {
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT || env.OTEL_EXPORTER_OTLP_ENDPOINT || undefined;
  const exporters = (env.OTEL_TRACES_EXPORTER ?? "").split(",").map((s) => s.trim()).filter(Boolean);
  const off = env.OTEL_SDK_DISABLED === "true" || (exporters.length > 0 && !exporters.includes("otlp"));
  return { endpoint, off };
}

/**
 * Starts the loopback receiver when the user set no endpoint (see the module comment);
 * `onWriteError` hears of a failed traces.jsonl write (at most once a minute per file).
 */
export async function startTraceCollector(runsDir: string, env: Readonly<Record<string, string | undefined>>, onWriteError?: (message: string) => void): Promise<TraceCollector> {
  const user = userTraceSettings(env);
  if (user.off) return { env: {}, destination: "off (OTEL_TRACES_EXPORTER / OTEL_SDK_DISABLED)", close: async () => undefined };
  if (user.endpoint) return { env: {}, destination: `OTLP endpoint ${user.endpoint}`, close: async () => undefined };
  const appender = new LineAppender({ onError: (file, err) => onWriteError?.(`traces: writing ${file} failed: ${err.message}`) });
  const sink = new RunFolderTraceSink({ runsDir, appender });
  const receiver: OtlpReceiver = await startOtlpReceiver({ onRequest: (req) => sink.write(req) });
  return {
    env: {
      // The signal's own variables: metrics (if the user pushes them) are not sent here.
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.url}/v1/traces`,
      OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/json",
      // Spans reach the run folder within a second or so (the SDK's default waits 5 s).
      OTEL_BSP_SCHEDULE_DELAY: env.OTEL_BSP_SCHEDULE_DELAY ?? "1000",
    },
    destination: `run folders (<run>/traces.jsonl, via ${receiver.url})`,
    close: async () => {
      await receiver.close();
      await sink.flush();
      return sink.stats();
    },
  };
}
