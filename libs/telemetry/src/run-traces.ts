/**
 * Traces kept in the run folder when no OTLP endpoint is set: `<run folder>/traces.jsonl`, one
 * OTLP/JSON ExportTraceServiceRequest per line (see otlp-json.ts), holding only that run's spans
 * (routed by their `rlhf.run_id` attribute).
 *
 * Two writers produce it, never both for one run: the coordinator's own exporter
 * ({@link RunFolderSpanExporter}, when the coordinator has no endpoint) and the `rlhf` CLI's
 * loopback receiver ({@link RunFolderTraceSink}, which gets every service's spans when the user
 * set no endpoint and points the children at it).
 *
 * Nothing here may slow or break training: writes are queued (bounded in bytes) and done in the
 * background in order; what does not fit is dropped and counted; a failed write is counted and
 * reported through `onError`, never thrown at the caller.
 */
import { appendFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { createReadStream } from "node:fs";
import { createInterface } from "node:readline";
import { join } from "node:path";
import { isRunId } from "@rlhf/errors";
import { ExportResultCode, type ExportResult } from "@opentelemetry/core";
import type { ReadableSpan, SpanExporter } from "@opentelemetry/sdk-trace-base";
import { ATTR_RUN_ID } from "./spans";
import { otlpJsonOf, spanRecordsOf, splitByRun, type OtlpTraceRequest, type SpanRecord } from "./otlp-json";

/** File name of a run folder's traces. */
export const TRACES_FILE = "traces.jsonl";

/** Counters of a {@link LineAppender}. */
export interface AppenderStats {
  /** Lines written. */
  written: number;
  /** Lines dropped because the queue was full. */
  dropped: number;
  /** Lines whose write failed. */
  failed: number;
  /** Bytes waiting to be written. */
  pendingBytes: number;
}

/** Options of {@link LineAppender}. */
export interface LineAppenderOptions {
  /** Most bytes queued; beyond, lines are dropped (counted). Default 16 MiB. */
  maxPendingBytes?: number;
  /** Called for a failed write (at most once per `errorEveryMs` per file). */
  onError?: (file: string, err: Error, stats: AppenderStats) => void;
  /** Default 60,000 ms. */
  errorEveryMs?: number;
}

/** Appends lines to files in the background, in order, within a byte bound. */
export class LineAppender {
  private readonly queue: { file: string; data: string }[] = [];
  private readonly s: AppenderStats = { written: 0, dropped: 0, failed: 0, pendingBytes: 0 };
  private draining: Promise<void> | undefined;
  private readonly lastError = new Map<string, number>();
  private readonly max: number;

  constructor(private readonly opts: LineAppenderOptions = {}) {
    this.max = opts.maxPendingBytes ?? 16 * 1024 * 1024;
  }

  /** Queues `line` (a newline is added) for `file`; false when it was dropped (queue full). */
  append(file: string, line: string): boolean {
    const data = line.endsWith("\n") ? line : line + "\n";
    const bytes = Buffer.byteLength(data);
    if (this.s.pendingBytes + bytes > this.max) {
      this.s.dropped++;
      return false;
    }
    this.s.pendingBytes += bytes;
    this.queue.push({ file, data });
    this.draining ??= this.drain().finally(() => (this.draining = undefined));
    return true;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0) {
      // Consecutive lines for one file go out in one write.
      const file = this.queue[0].file;
      let n = 0;
      while (n < this.queue.length && this.queue[n].file === file) n++;
      const batch = this.queue.splice(0, n);
      const data = batch.map((b) => b.data).join("");
      try {
        await appendFile(file, data);
        this.s.written += n;
      } catch (err) {
        this.s.failed += n;
        const now = Date.now();
        if (now - (this.lastError.get(file) ?? -Infinity) >= (this.opts.errorEveryMs ?? 60_000)) {
          this.lastError.set(file, now);
          this.opts.onError?.(file, err as Error, this.stats());
        }
      } finally {
        this.s.pendingBytes -= Buffer.byteLength(data);
      }
    }
  }

  /** Resolves when everything queued so far is written (or failed). */
  async flush(): Promise<void> {
    while (this.draining) await this.draining;
  }

  stats(): AppenderStats {
    return { ...this.s };
  }
}

// run id -> run folder, for the coordinator's own spans.
const runDirs = new Map<string, string>();

/** Routes the spans of `runId` to `<dir>/traces.jsonl` (the coordinator registers each run it executes). */
export function registerRunTraceDir(runId: string, dir: string): void {
  runDirs.set(runId, dir);
}

/** Options of {@link RunFolderSpanExporter}. */
export interface RunFolderSpanExporterOptions {
  /** The run folder of a run id; default: the folders given to {@link registerRunTraceDir}. */
  dirOf?: (runId: string) => string | undefined;
  appender?: LineAppender;
}

/**
 * A SpanExporter that appends each run's spans to its run folder's traces.jsonl (one line per
 * export and run). Spans without a run id, or of a run with no known folder, are left out.
 */
export class RunFolderSpanExporter implements SpanExporter {
  readonly appender: LineAppender;
  private readonly dirOf: (runId: string) => string | undefined;
  /** Spans left out because they had no run id or no run folder. */
  unrouted = 0;

  constructor(opts: RunFolderSpanExporterOptions = {}) {
    this.dirOf = opts.dirOf ?? ((id) => runDirs.get(id));
    this.appender =
      opts.appender ??
      new LineAppender({
        onError: (file, err, st) => process.stderr.write(JSON.stringify({ level: 40, time: Date.now(), msg: "traces.jsonl write failed", file, err: err.message, failed: st.failed }) + "\n"),
      });
  }

  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    const byRun = new Map<string, ReadableSpan[]>();
    for (const s of spans) {
      const run = s.attributes[ATTR_RUN_ID];
      const dir = typeof run === "string" ? this.dirOf(run) : undefined;
      if (typeof run !== "string" || !dir) {
        this.unrouted++;
        continue;
      }
      let list = byRun.get(dir);
      if (!list) byRun.set(dir, (list = []));
      list.push(s);
    }
    for (const [dir, list] of byRun) this.appender.append(join(dir, TRACES_FILE), otlpJsonOf(list));
    done({ code: ExportResultCode.SUCCESS });
  }

  forceFlush(): Promise<void> {
    return this.appender.flush();
  }

  shutdown(): Promise<void> {
    return this.appender.flush();
  }
}

/** Options of {@link RunFolderTraceSink}. */
export interface RunFolderTraceSinkOptions {
  /** The coordinator's RUNS_DIR: run `id` is `<runsDir>/<id>`. */
  runsDir: string;
  appender?: LineAppender;
}

/** Counters of a {@link RunFolderTraceSink}. */
export interface SinkStats extends AppenderStats {
  /** Spans written into a run folder (queued). */
  spans: number;
  /** Spans with no run id, or whose run has no folder (yet). */
  unrouted: number;
}

/**
 * Writes received OTLP/JSON requests into the run folders: split by run id, one line per request
 * and run, only into folders that exist (a run id is `[a-z0-9-]{1,64}`, never a path).
 */
export class RunFolderTraceSink {
  readonly appender: LineAppender;
  private spans = 0;
  private unrouted = 0;

  constructor(private readonly opts: RunFolderTraceSinkOptions) {
    this.appender = opts.appender ?? new LineAppender();
  }

  /** Routes one request. */
  write(req: OtlpTraceRequest): void {
    const { byRun, unrouted } = splitByRun(req);
    this.unrouted += unrouted;
    for (const [run, part] of byRun) {
      const n = (part.resourceSpans ?? []).reduce((a, rs) => a + (rs.scopeSpans ?? []).reduce((b, ss) => b + (ss.spans?.length ?? 0), 0), 0);
      const dir = join(this.opts.runsDir, run);
      if (!isRunId(run) || !existsSync(join(dir, "run.json"))) {
        this.unrouted += n;
        continue;
      }
      if (this.appender.append(join(dir, TRACES_FILE), JSON.stringify(part))) this.spans += n;
    }
  }

  stats(): SinkStats {
    return { ...this.appender.stats(), spans: this.spans, unrouted: this.unrouted };
  }

  flush(): Promise<void> {
    return this.appender.flush();
  }
}

/**
 * The spans of a traces.jsonl file that `keep` accepts, read line by line (a missing file is no
 * spans; an unreadable line is skipped and counted).
 */
export async function readTraceFile(file: string, keep: (s: SpanRecord) => boolean = () => true): Promise<{ spans: SpanRecord[]; badLines: number }> {
  const spans: SpanRecord[] = [];
  let badLines = 0;
  if (!existsSync(file)) return { spans, badLines };
  const lines = createInterface({ input: createReadStream(file, { encoding: "utf8" }), crlfDelay: Infinity });
  for await (const line of lines) {
    if (line.trim() === "") continue;
    try {
      for (const s of spanRecordsOf(JSON.parse(line) as OtlpTraceRequest)) if (keep(s)) spans.push(s);
    } catch {
      badLines++;
    }
  }
  return { spans, badLines };
}
