/**
 * OTLP/JSON trace data (the `ExportTraceServiceRequest` of opentelemetry-proto in its JSON
 * encoding, exactly what an OTLP/HTTP exporter with `http/json` sends): the types this code
 * reads, the serialisation of SDK spans, splitting a request by run, and flat span records.
 *
 * A run folder's `traces.jsonl` holds one such request per line.
 */
import { JsonTraceSerializer } from "@opentelemetry/otlp-transformer";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { ATTR_RUN_ID } from "./spans";

/** An attribute value of OTLP/JSON (int64 values travel as strings). */
export interface OtlpAnyValue {
  stringValue?: string;
  boolValue?: boolean;
  intValue?: number | string;
  doubleValue?: number;
  arrayValue?: { values?: OtlpAnyValue[] };
  kvlistValue?: { values?: OtlpKeyValue[] };
  bytesValue?: string;
}
/** One attribute. */
export interface OtlpKeyValue {
  key: string;
  value?: OtlpAnyValue;
}
/** One span (the fields this code reads; others are kept as they came). */
export interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  /** 1 internal, 2 server, 3 client, 4 producer, 5 consumer (0 unspecified). */
  kind?: number;
  startTimeUnixNano: string | number;
  endTimeUnixNano: string | number;
  attributes?: OtlpKeyValue[];
  status?: { code?: number; message?: string };
  [other: string]: unknown;
}
/** Spans of one instrumentation scope. */
export interface OtlpScopeSpans {
  scope?: { name?: string; version?: string };
  spans?: OtlpSpan[];
  [other: string]: unknown;
}
/** Spans of one resource (one service process). */
export interface OtlpResourceSpans {
  resource?: { attributes?: OtlpKeyValue[]; [other: string]: unknown };
  scopeSpans?: OtlpScopeSpans[];
  [other: string]: unknown;
}
/** An ExportTraceServiceRequest. */
export interface OtlpTraceRequest {
  resourceSpans?: OtlpResourceSpans[];
}

/** OTLP span kinds as numbers (the API's SpanKind + 1). */
export const OTLP_KIND = { internal: 1, server: 2, client: 3 } as const;

/** SDK spans as one OTLP/JSON ExportTraceServiceRequest, as the http/json exporter would send them. */
export function otlpJsonOf(spans: ReadableSpan[]): string {
  return new TextDecoder().decode(JsonTraceSerializer.serializeRequest(spans));
}

/** An attribute's value as a plain JSON value (int64 strings become numbers when they fit). */
export function plainValue(v: OtlpAnyValue | undefined): string | number | boolean | undefined {
  if (!v) return undefined;
  if (v.stringValue !== undefined) return v.stringValue;
  if (v.boolValue !== undefined) return v.boolValue;
  if (v.intValue !== undefined) return Number(v.intValue);
  if (v.doubleValue !== undefined) return v.doubleValue;
  return undefined;
}

/** The value of attribute `key`, if present. */
export function attributeOf(attrs: OtlpKeyValue[] | undefined, key: string): string | number | boolean | undefined {
  return plainValue(attrs?.find((a) => a.key === key)?.value);
}

/**
 * Splits a request by the spans' `rlhf.run_id` attribute: one request per run, each keeping its
 * spans' resource and scope. Spans without a run id (health checks, calls outside a run) are
 * counted in `unrouted`.
 */
export function splitByRun(req: OtlpTraceRequest): { byRun: Map<string, OtlpTraceRequest>; unrouted: number } {
  const byRun = new Map<string, OtlpTraceRequest>();
  let unrouted = 0;
  for (const rs of req.resourceSpans ?? []) {
    // run id -> this resource's scopes, built on first use
    const mine = new Map<string, OtlpResourceSpans>();
    for (const ss of rs.scopeSpans ?? []) {
      const scoped = new Map<string, OtlpSpan[]>();
      for (const span of ss.spans ?? []) {
        const run = attributeOf(span.attributes, ATTR_RUN_ID);
        if (typeof run !== "string" || run === "") {
          unrouted++;
          continue;
        }
        let list = scoped.get(run);
        if (!list) scoped.set(run, (list = []));
        list.push(span);
      }
      for (const [run, spans] of scoped) {
        let r = mine.get(run);
        if (!r) {
          r = { ...rs, scopeSpans: [] };
          mine.set(run, r);
          let out = byRun.get(run);
          if (!out) byRun.set(run, (out = { resourceSpans: [] }));
          out.resourceSpans!.push(r);
        }
        r.scopeSpans!.push({ ...ss, spans });
      }
    }
  }
  return { byRun, unrouted };
}

/** A span flattened for analysis (timeline, tests). Times in milliseconds since the epoch. */
export interface SpanRecord {
  traceId: string;
  spanId: string;
  /** Absent for a root span. */
  parentSpanId?: string;
  name: string;
  /** OTLP kind (see {@link OTLP_KIND}). */
  kind: number;
  /** `service.name` of the process that recorded it. */
  service: string;
  startMs: number;
  endMs: number;
  attributes: Record<string, string | number | boolean>;
  /** OTLP status code: 0 unset, 1 ok, 2 error. */
  statusCode: number;
}

const nanosToMs = (v: string | number): number => (typeof v === "string" ? Number(BigInt(v) / 1000n) / 1000 : v / 1e6);

/** The spans of a request as flat records. */
export function spanRecordsOf(req: OtlpTraceRequest): SpanRecord[] {
  const out: SpanRecord[] = [];
  for (const rs of req.resourceSpans ?? []) {
    const service = String(attributeOf(rs.resource?.attributes, "service.name") ?? "unknown");
    for (const ss of rs.scopeSpans ?? []) {
      for (const s of ss.spans ?? []) {
        const attributes: Record<string, string | number | boolean> = {};
        for (const a of s.attributes ?? []) {
          const v = plainValue(a.value);
          if (v !== undefined) attributes[a.key] = v;
        }
        out.push({
          traceId: s.traceId,
          spanId: s.spanId,
          parentSpanId: s.parentSpanId ? s.parentSpanId : undefined,
          name: s.name,
          kind: s.kind ?? 0,
          service,
          startMs: nanosToMs(s.startTimeUnixNano),
          endMs: nanosToMs(s.endTimeUnixNano),
          attributes,
          statusCode: s.status?.code ?? 0,
        });
      }
    }
  }
  return out;
}
