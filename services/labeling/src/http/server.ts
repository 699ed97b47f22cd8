/**
 * The web UI's HTTP server, in the labeling service's process: static pages (compiled from
 * src/web) and a small JSON API. Labelers sign in with their token (or an invite link that
 * carries it in the URL fragment, never sent to a server log), the admin with the admin token.
 * A session is a random cookie (HttpOnly, SameSite=Strict; only its hash is stored); every POST
 * but the sign-in carries the session's CSRF token in `X-CSRF-Token`, and the sign-in must be
 * JSON from this origin. Every page gets a CSP that allows only this origin's scripts and styles,
 * and the pages render model text with textContent, never as HTML.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { readFileSync, existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { createHash, timingSafeEqual } from "node:crypto";
import type { AddressInfo } from "node:net";
import { DomainError, InvalidArgumentError } from "@rlhf/errors";
import type { Logger } from "@rlhf/grpc-kit";
import { rankingsToJsonl } from "@rlhf/labeling-client";
import type { LabelingStore, Session } from "../store/store";
import { BATCH_ID_PATTERN } from "../domain/comparisons";

/** Security headers of every response. */
export const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
const BASE_HEADERS: Record<string, string> = {
  "Content-Security-Policy": CSP,
  "X-Content-Type-Options": "nosniff",
  "Referrer-Policy": "no-referrer",
  "X-Frame-Options": "DENY",
  "Cross-Origin-Opener-Policy": "same-origin",
};
const COOKIE = "lbl_session";
/** Largest JSON body accepted. */
export const MAX_BODY_BYTES = 256 * 1024;
/** Failed sign-ins per client address within {@link LOGIN_WINDOW_MS} before 429. */
const MAX_LOGIN_FAILURES = 20;
const LOGIN_WINDOW_MS = 10 * 60_000;

/** Options of {@link startHttp}. */
export interface HttpOptions {
  store: LabelingStore;
  log: Logger;
  /** The admin token (a function: the file may be rotated). */
  adminToken: () => string;
  host: string;
  port: number;
  /** Folder of the compiled pages (dist/web). */
  webRoot?: string;
  /** Session cookies get `Secure`. */
  secureCookies?: boolean;
  /** Public base URL for invite links; default the listening address. */
  publicUrl?: string;
  /** Lifetime of the session cookie (the store's session lifetime). Default 12 h. */
  sessionTtlMs?: number;
}

/** A running HTTP server. */
export interface RunningHttp {
  server: Server;
  /** http://host:port/ (or the public URL). */
  url: string;
  close(): Promise<void>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const STATIC: Record<string, { file: string; type: string }> = {
  "/": { file: "index.html", type: "text/html; charset=utf-8" },
  "/admin": { file: "admin.html", type: "text/html; charset=utf-8" },
  "/static/style.css": { file: "style.css", type: "text/css; charset=utf-8" },
  "/static/app.js": { file: "app.js", type: "text/javascript; charset=utf-8" },
  "/static/admin.js": { file: "admin.js", type: "text/javascript; charset=utf-8" },
  "/static/common.js": { file: "common.js", type: "text/javascript; charset=utf-8" },
};

/** The compiled pages: dist/web beside dist/http, or the package's dist/web when running from src (tests). */
export function defaultWebRoot(): string {
  return resolve(__dirname, "..", "..", "dist", "web");
}

function cookieOf(req: IncomingMessage): string | undefined {
  for (const part of (req.headers.cookie ?? "").split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === COOKIE) return v.join("=");
  }
  return undefined;
}

const sha = (s: string) => createHash("sha256").update(s, "utf8").digest();
const sameSecret = (a: string, b: string) => timingSafeEqual(sha(a), sha(b));

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  if (!/^application\/json\b/i.test(req.headers["content-type"] ?? "")) throw new HttpError(415, "send JSON (Content-Type: application/json)");
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(c as Buffer);
  }
  if (size === 0) return {};
  let v: unknown;
  try {
    v = JSON.parse(Buffer.concat(chunks).toString("utf8"));
  } catch {
    throw new HttpError(400, "the body is not valid JSON");
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new HttpError(400, "the body must be a JSON object");
  return v as Record<string, unknown>;
}

/** Starts the web UI's server. */
export async function startHttp(opts: HttpOptions): Promise<RunningHttp> {
  const { store, log } = opts;
  const webRoot = opts.webRoot ?? defaultWebRoot();
  if (!existsSync(join(webRoot, "index.html"))) throw new Error(`${webRoot}/index.html is missing: run \`pnpm build\` first`);
  const pages = new Map(Object.entries(STATIC).map(([path, s]) => [path, { body: readFileSync(join(webRoot, s.file)), type: s.type }]));
  const failures = new Map<string, { n: number; since: number }>();
  let baseUrl = opts.publicUrl ?? "";

  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { ...BASE_HEADERS, "Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store", ...headers });
    res.end(text);
  };
  const setCookie = (value: string, maxAgeS: number) =>
    `${COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAgeS}${opts.secureCookies ? "; Secure" : ""}`;

  const sessionOf = async (req: IncomingMessage): Promise<Session | undefined> => {
    const c = cookieOf(req);
    return c && /^[A-Za-z0-9_-]{20,100}$/.test(c) ? store.session(c) : undefined;
  };
  /** The session, and for a POST its CSRF token checked. */
  const requireSession = async (req: IncomingMessage, role: "labeler" | "admin"): Promise<Session> => {
    const s = await sessionOf(req);
    if (!s) throw new HttpError(401, "sign in first");
    if (req.method === "POST") {
      const t = req.headers["x-csrf-token"];
      if (typeof t !== "string" || !sameSecret(t, s.csrf)) throw new HttpError(403, "missing or wrong CSRF token (reload the page)");
    }
    if (role === "admin" && !s.admin) throw new HttpError(403, "this needs the admin token");
    if (role === "labeler" && !s.labeler) throw new HttpError(403, "this needs a labeler's token");
    return s;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? "/", "http://localhost");
    const path = url.pathname;
    // Browsers say where a request comes from: refuse anything another site starts.
    const site = req.headers["sec-fetch-site"];
    if (req.method === "POST" && typeof site === "string" && site !== "same-origin" && site !== "none") throw new HttpError(403, "cross-site request refused");
    if (req.method === "GET" && pages.has(path)) {
      const p = pages.get(path) as { body: Buffer; type: string };
      res.writeHead(200, { ...BASE_HEADERS, "Content-Type": p.type, "Cache-Control": "no-cache" });
      res.end(p.body);
      return;
    }
    if (!path.startsWith("/api/")) throw new HttpError(404, "not found");
    const route = `${req.method} ${path}`;
    switch (route) {
      case "POST /api/login": {
        const origin = req.headers.origin;
        if (origin !== undefined && origin !== "null" && new URL(origin).host !== req.headers.host) throw new HttpError(403, "cross-origin sign-in refused");
        const peer = req.socket.remoteAddress ?? "?";
        const f = failures.get(peer);
        if (f && Date.now() - f.since < LOGIN_WINDOW_MS && f.n >= MAX_LOGIN_FAILURES) throw new HttpError(429, "too many failed sign-ins: wait a few minutes");
        const body = await readJson(req);
        const token = body.token;
        if (typeof token !== "string" || token.length < 8 || token.length > 512) throw new HttpError(400, "token: give the token you were sent (or open your invite link)");
        const admin = sameSecret(token, opts.adminToken());
        const labeler = admin ? undefined : await store.labelerByToken(token);
        if (!admin && !labeler) {
          const cur = f && Date.now() - f.since < LOGIN_WINDOW_MS ? f : { n: 0, since: Date.now() };
          // Bounded memory: forget expired windows when many addresses failed.
          if (failures.size > 10_000) for (const [k, v] of failures) if (Date.now() - v.since >= LOGIN_WINDOW_MS) failures.delete(k);
          failures.set(peer, { n: cur.n + 1, since: cur.since });
          log.warn({ peer }, "web sign-in refused");
          throw new HttpError(401, "unknown token");
        }
        const s = await store.createSession({ labelerId: labeler?.id, admin });
        log.info({ labeler: labeler?.name, admin }, "web sign-in");
        return send(res, 200, { name: labeler?.name ?? "admin", admin, csrf: s.csrf }, { "Set-Cookie": setCookie(s.cookie, Math.floor((opts.sessionTtlMs ?? 12 * 3600_000) / 1000)) });
      }
      case "POST /api/logout": {
        await requireSessionAny(req);
        const c = cookieOf(req);
        if (c) await store.deleteSession(c);
        return send(res, 200, { ok: true }, { "Set-Cookie": setCookie("", 0) });
      }
      case "GET /api/session": {
        const s = await sessionOf(req);
        if (!s) throw new HttpError(401, "sign in first");
        return send(res, 200, { name: s.labeler?.name ?? "admin", admin: s.admin, csrf: s.csrf });
      }
      case "GET /api/next": {
        const s = await requireSession(req, "labeler");
        const a = await store.nextAssignment(s.labeler?.id as string);
        return send(res, 200, { assignment: a ?? null });
      }
      case "POST /api/submit": {
        const s = await requireSession(req, "labeler");
        const body = await readJson(req);
        await store.submitRanking(s.labeler?.id as string, { assignment: body.assignment, groups: body.groups, scores: body.scores, flags: body.flags });
        return send(res, 200, { ok: true });
      }
      case "POST /api/skip": {
        const s = await requireSession(req, "labeler");
        const body = await readJson(req);
        await store.skip(s.labeler?.id as string, body.assignment);
        return send(res, 200, { ok: true });
      }
      case "POST /api/undo": {
        const s = await requireSession(req, "labeler");
        return send(res, 200, { assignment: await store.undo(s.labeler?.id as string) });
      }
      case "GET /api/admin/stats": {
        await requireSession(req, "admin");
        const stats = await store.stats();
        return send(res, 200, { ...stats, labelers: stats.labelers.map(({ id: _id, ...l }) => l) });
      }
      case "POST /api/admin/labelers": {
        await requireSession(req, "admin");
        const body = await readJson(req);
        if (typeof body.name !== "string") throw new InvalidArgumentError("name", "must be a string");
        const { labeler, token } = await store.createLabeler(body.name, body.simulated === true);
        log.info({ labeler: labeler.name, simulated: labeler.simulated }, "labeler created");
        return send(res, 200, { name: labeler.name, simulated: labeler.simulated, token, inviteUrl: `${baseUrl}#invite=${token}` });
      }
      case "POST /api/admin/labelers/disable": {
        await requireSession(req, "admin");
        const body = await readJson(req);
        if (typeof body.name !== "string") throw new InvalidArgumentError("name", "must be a string");
        await store.disableLabeler(body.name);
        log.info({ labeler: body.name }, "labeler disabled");
        return send(res, 200, { ok: true });
      }
      case "GET /api/admin/export": {
        await requireSession(req, "admin");
        const batch = url.searchParams.get("batch") ?? undefined;
        if (batch !== undefined && !BATCH_ID_PATTERN.test(batch)) throw new InvalidArgumentError("batch", "must be 1..64 characters of [A-Za-z0-9._:-]");
        const rankings = await store.allRankings(batch);
        res.writeHead(200, {
          ...BASE_HEADERS,
          "Content-Type": "application/x-ndjson; charset=utf-8",
          "Content-Disposition": `attachment; filename="rankings${batch ? "-" + batch : ""}.jsonl"`,
          "Cache-Control": "no-store",
        });
        res.end(rankingsToJsonl(rankings, { meta: url.searchParams.get("meta") === "1" }));
        return;
      }
      default:
        throw new HttpError(404, "no such API call");
    }
  };
  const requireSessionAny = async (req: IncomingMessage) => {
    const s = await sessionOf(req);
    if (!s) throw new HttpError(401, "sign in first");
    const t = req.headers["x-csrf-token"];
    if (typeof t !== "string" || !sameSecret(t, s.csrf)) throw new HttpError(403, "missing or wrong CSRF token (reload the page)");
    return s;
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (res.headersSent) return void res.destroy();
      if (err instanceof HttpError) return send(res, err.status, { error: err.message });
      if (err instanceof DomainError) {
        const status = { INVALID_ARGUMENT: 400, NOT_FOUND: 404, FAILED_PRECONDITION: 409, ALREADY_EXISTS: 409, PERMISSION_DENIED: 403 }[err.code as string] ?? 500;
        if (status !== 500) return send(res, status, { error: err.message });
      }
      log.error({ err: (err as Error).stack ?? String(err), path: req.url?.split("?")[0] }, "http request failed");
      send(res, 500, { error: "internal error (see the service's log)" });
    });
  });
  server.headersTimeout = 30_000;
  server.requestTimeout = 60_000;
  await new Promise<void>((resolveListen, reject) => {
    server.once("error", reject);
    server.listen(opts.port, opts.host, () => resolveListen());
  });
  const addr = server.address() as AddressInfo;
  const host = addr.family === "IPv6" ? `[${addr.address}]` : addr.address;
  if (!baseUrl) baseUrl = `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${addr.port}/`;
  log.info({ url: baseUrl }, "web UI listening");
  return {
    server,
    url: baseUrl,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
