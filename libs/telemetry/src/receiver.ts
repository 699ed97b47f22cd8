/**
 * A minimal OTLP/HTTP trace receiver (JSON encoding, `POST /v1/traces`) on loopback: what the
 * `rlhf` CLI points its child services at when the user set no OTLP endpoint, so that their spans
 * end up in the run folder; tests use it as a collector.
 *
 * Protobuf bodies are refused with 415 (the children are told to send `http/json`); bodies over
 * the limit get 413; malformed JSON 400. A request is answered as soon as it is parsed: handling
 * it (writing files) must not make exporters wait.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createGunzip } from "node:zlib";
import type { Readable } from "node:stream";
import type { OtlpTraceRequest } from "./otlp-json";

/** Options of {@link startOtlpReceiver}. */
export interface OtlpReceiverOptions {
  /** Called with every well-formed request. An exception is counted, never answered as an error. */
  onRequest: (req: OtlpTraceRequest) => void;
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0 (any free port). */
  port?: number;
  /** Largest request body (after decompression). Default 32 MiB. */
  maxBodyBytes?: number;
}

/** Counters of a receiver. */
export interface OtlpReceiverStats {
  /** Requests accepted. */
  requests: number;
  /** Requests refused (bad path, method, encoding, size or JSON). */
  refused: number;
  /** Requests whose handler threw. */
  handlerErrors: number;
}

/** A running receiver. */
export interface OtlpReceiver {
  /** Base URL, e.g. `http://127.0.0.1:43121`: the value of OTEL_EXPORTER_OTLP_ENDPOINT. */
  url: string;
  stats(): OtlpReceiverStats;
  /** Stops accepting, lets requests in progress finish. */
  close(): Promise<void>;
}

function readBody(req: IncomingMessage, max: number): Promise<string> {
  const enc = (req.headers["content-encoding"] ?? "identity").toLowerCase();
  let stream: Readable = req;
  if (enc === "gzip") stream = req.pipe(createGunzip());
  else if (enc !== "identity") return Promise.reject(Object.assign(new Error(`content-encoding ${enc} is not supported (gzip or none)`), { status: 415 }));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    // Past the limit the rest is read and thrown away (memory stays bounded), then refused.
    stream.on("data", (d: Buffer) => {
      n += d.length;
      if (n <= max) chunks.push(d);
    });
    stream.on("end", () => (n > max ? reject(Object.assign(new Error(`body exceeds ${max} bytes`), { status: 413 })) : resolve(Buffer.concat(chunks).toString("utf8"))));
    stream.on("error", (e) => reject(Object.assign(e, { status: 400 })));
  });
}

/** Starts a receiver; see the module comment. */
export function startOtlpReceiver(opts: OtlpReceiverOptions): Promise<OtlpReceiver> {
  const stats: OtlpReceiverStats = { requests: 0, refused: 0, handlerErrors: 0 };
  const max = opts.maxBodyBytes ?? 32 * 1024 * 1024;
  const answer = (res: ServerResponse, status: number, message?: string) => {
    if (status !== 200) stats.refused++;
    res.writeHead(status, { "content-type": "application/json" });
    res.end(status === 200 ? "{}" : JSON.stringify({ code: status, message }));
  };
  const server = createServer((req, res) => {
    const path = (req.url ?? "").split("?")[0];
    if (path !== "/v1/traces") return answer(res, 404, `only /v1/traces is served, got ${path}`);
    if (req.method !== "POST") return answer(res, 405, "POST only");
    const type = (req.headers["content-type"] ?? "").split(";")[0].trim().toLowerCase();
    if (type !== "application/json") {
      req.resume();
      return answer(res, 415, `content-type must be application/json (OTEL_EXPORTER_OTLP_PROTOCOL=http/json), got ${type || "none"}`);
    }
    readBody(req, max).then(
      (text) => {
        let body: OtlpTraceRequest;
        try {
          body = JSON.parse(text) as OtlpTraceRequest;
        } catch (e) {
          return answer(res, 400, `not JSON: ${(e as Error).message}`);
        }
        if (typeof body !== "object" || body === null || (body.resourceSpans !== undefined && !Array.isArray(body.resourceSpans))) return answer(res, 400, "resourceSpans must be an array");
        stats.requests++;
        answer(res, 200);
        try {
          opts.onRequest(body);
        } catch {
          stats.handlerErrors++;
        }
      },
      (err: Error & { status?: number }) => {
        if (!res.headersSent) answer(res, err.status ?? 400, err.message);
      },
    );
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => {
      const a = server.address() as { address: string; port: number };
      const host = a.address.includes(":") ? `[${a.address}]` : a.address;
      resolve({
        url: `http://${host}:${a.port}`,
        stats: () => ({ ...stats }),
        close: () =>
          new Promise<void>((r) => {
            server.close(() => r());
            server.closeIdleConnections();
          }),
      });
    });
  });
}
