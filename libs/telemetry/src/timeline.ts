/**
 * The timeline of one PPO iteration for the run report: its trace's spans (the coordinator's
 * phases and the services' server spans) as rows of a Gantt chart, in tree order with a depth.
 * `RecentRunTraces` keeps the coordinator's own spans of recent traces in memory, so the report
 * has the phases even where the spans went to an OTLP endpoint instead of the run folder.
 */
import type { ReadableSpan, SpanProcessor } from "@opentelemetry/sdk-trace-base";
import { hrTimeToMilliseconds } from "@opentelemetry/core";
import { ATTR_RUN_ID, ATTR_ITERATION, ATTR_VARIANT, ITERATION_SPAN } from "./spans";
import { OTLP_KIND, type SpanRecord } from "./otlp-json";

/** Options of {@link RecentRunTraces}. */
export interface RecentRunTracesOptions {
  /** Traces kept per run and PPO variant (stage traces count as one more variant; oldest dropped first). Default 8. */
  maxTracesPerRun?: number;
  /** Spans kept per trace (later ones dropped). Default 2,000. */
  maxSpansPerTrace?: number;
  /** Runs kept (least recently written dropped first). Default 8. */
  maxRuns?: number;
  /** Service name while the resource's attributes are still being detected. Default OTEL_SERVICE_NAME, else "ppo-coordinator". */
  service?: string;
}

/**
 * A SpanProcessor keeping, per run and PPO variant, the spans of the most recent traces (bounded):
 * so PPO-ptx's iterations are still there after plain PPO's.
 */
export class RecentRunTraces implements SpanProcessor {
  // "<run id>|<variant or ->" -> trace id -> spans
  private readonly runs = new Map<string, Map<string, SpanRecord[]>>();
  private readonly o: Required<Omit<RecentRunTracesOptions, "service">>;
  private readonly service: string;
  /** Spans not kept because a trace was full. */
  dropped = 0;

  constructor(opts: RecentRunTracesOptions = {}) {
    this.o = { maxTracesPerRun: opts.maxTracesPerRun ?? 8, maxSpansPerTrace: opts.maxSpansPerTrace ?? 2000, maxRuns: opts.maxRuns ?? 8 };
    this.service = opts.service ?? (process.env.OTEL_SERVICE_NAME || "ppo-coordinator");
  }

  onStart(): void {}

  onEnd(span: ReadableSpan): void {
    const run = span.attributes[ATTR_RUN_ID];
    if (typeof run !== "string") return;
    const key = `${run}|${String(span.attributes[ATTR_VARIANT] ?? "-")}`;
    let traces = this.runs.get(key);
    if (traces) this.runs.delete(key);
    else traces = new Map();
    this.runs.set(key, traces); // most recently written last
    // Up to maxRuns runs of three groups each (ppo_ptx, ppo, stages).
    if (this.runs.size > 3 * this.o.maxRuns) this.runs.delete(this.runs.keys().next().value as string);
    const ctx = span.spanContext();
    let spans = traces.get(ctx.traceId);
    if (!spans) {
      traces.set(ctx.traceId, (spans = []));
      if (traces.size > this.o.maxTracesPerRun) traces.delete(traces.keys().next().value as string);
    }
    if (spans.length >= this.o.maxSpansPerTrace) {
      this.dropped++;
      return;
    }
    const attributes: Record<string, string | number | boolean> = {};
    for (const [k, v] of Object.entries(span.attributes)) if (typeof v === "string" || typeof v === "number" || typeof v === "boolean") attributes[k] = v;
    spans.push({
      traceId: ctx.traceId,
      spanId: ctx.spanId,
      parentSpanId: span.parentSpanContext?.spanId,
      name: span.name,
      kind: span.kind + 1,
      // Reading a resource's attributes before its detection settled only gets a diag error.
      service: span.resource.asyncAttributesPending ? this.service : String(span.resource.attributes["service.name"] ?? this.service),
      startMs: hrTimeToMilliseconds(span.startTime),
      endMs: hrTimeToMilliseconds(span.endTime),
      attributes,
      statusCode: span.status.code,
    });
  }

  /** The kept spans of a run. */
  spans(runId: string): SpanRecord[] {
    const out: SpanRecord[] = [];
    for (const [key, traces] of this.runs) if (key.slice(0, key.lastIndexOf("|")) === runId) for (const spans of traces.values()) out.push(...spans);
    return out;
  }

  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

/** One row of the timeline (the report's TimelineSpan). */
export interface TimelineRow {
  name: string;
  service: string;
  /** Milliseconds after the iteration's root span started. */
  startMs: number;
  durationMs: number;
  /** 0 for the root, 1 for its children, ... */
  depth: number;
  /** The span's `rlhf.*` attributes but the run id; absent when none. */
  attributes?: Record<string, string | number | boolean>;
}

/** The timeline of one iteration and which one it is. */
export interface IterationTimeline {
  traceId: string;
  iteration: number;
  variant: string;
  rows: TimelineRow[];
}

/** Options of {@link iterationTimeline}. */
export interface IterationTimelineOptions {
  /** Only iterations of this run. */
  runId: string;
  /** Most rows (tree order; deeper spans of later phases go first). Default 400. */
  maxRows?: number;
  /** Keep gRPC client spans (default false: the server span under each shows the call). */
  clientSpans?: boolean;
}

/**
 * Picks one traced PPO iteration of the run among `spans` (which may hold duplicates, from memory
 * and from the run folder) and lays it out: the variant PPO-ptx first, then the trace with spans
 * from the most services (the others' spans arrive later than the coordinator's), then the latest.
 * Rows are in tree order (children by start time, then end time: SDK start times are whole
 * milliseconds, so back-to-back phases can start in the same one); client spans are left out by default and their
 * children drawn under the client's parent. Undefined when no iteration was traced.
 */
export function iterationTimeline(spans: readonly SpanRecord[], opts: IterationTimelineOptions): IterationTimeline | undefined {
  const byTrace = new Map<string, Map<string, SpanRecord>>();
  for (const s of spans) {
    let m = byTrace.get(s.traceId);
    if (!m) byTrace.set(s.traceId, (m = new Map()));
    if (!m.has(s.spanId)) m.set(s.spanId, s);
  }
  let best: { root: SpanRecord; trace: Map<string, SpanRecord>; score: number[] } | undefined;
  for (const trace of byTrace.values()) {
    const root = [...trace.values()].find((s) => s.name === ITERATION_SPAN && !s.parentSpanId && s.attributes[ATTR_RUN_ID] === opts.runId);
    if (!root) continue;
    const services = new Set([...trace.values()].map((s) => s.service)).size;
    const score = [root.attributes[ATTR_VARIANT] === "ppo_ptx" ? 1 : 0, services, root.startMs, Number(root.attributes[ATTR_ITERATION] ?? 0)];
    if (!best || compare(score, best.score) > 0) best = { root, trace, score };
  }
  if (!best) return undefined;
  const { root, trace } = best;
  const children = new Map<string, SpanRecord[]>();
  const keep = (s: SpanRecord) => opts.clientSpans || s.kind !== OTLP_KIND.client;
  // Parent of a span among the kept ones: skip dropped (client) spans; unknown parents -> the root.
  const keptParent = (s: SpanRecord): string => {
    let p = s.parentSpanId ? trace.get(s.parentSpanId) : undefined;
    for (let guard = 0; p && !keep(p) && guard < 64; guard++) p = p.parentSpanId ? trace.get(p.parentSpanId) : undefined;
    return p ? p.spanId : root.spanId;
  };
  for (const s of trace.values()) {
    if (s === root || !keep(s)) continue;
    const p = keptParent(s);
    let list = children.get(p);
    if (!list) children.set(p, (list = []));
    list.push(s);
  }
  const rows: TimelineRow[] = [];
  const max = opts.maxRows ?? 400;
  const visit = (s: SpanRecord, depth: number) => {
    if (rows.length >= max || depth > 32) return;
    const row: TimelineRow = { name: s.name, service: s.service, startMs: round(Math.max(0, s.startMs - root.startMs)), durationMs: round(Math.max(0, s.endMs - s.startMs)), depth };
    const attrs = Object.entries(s.attributes).filter(([k]) => k.startsWith("rlhf.") && k !== ATTR_RUN_ID);
    if (attrs.length) row.attributes = Object.fromEntries(attrs);
    rows.push(row);
    for (const c of (children.get(s.spanId) ?? []).sort((a, b) => a.startMs - b.startMs || a.endMs - b.endMs)) visit(c, depth + 1);
  };
  visit(root, 0);
  return { traceId: root.traceId, iteration: Number(root.attributes[ATTR_ITERATION] ?? 0), variant: String(root.attributes[ATTR_VARIANT] ?? ""), rows };
}

function compare(a: number[], b: number[]): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return a[i] - b[i];
  return 0;
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

/**
 * The process's recorder of recent run traces: the coordinator passes it to startTelemetry
 * (`spanProcessors`) and reads it when it writes a run's report. Empty where it was not installed.
 */
export const recentRunTraces = new RecentRunTraces();
