/**
 * Bearer-token authentication with roles, in one place for every service: a grpc-js server
 * interceptor checks `authorization: Bearer <token>` on every call except grpc.health.v1 (so that
 * Kubernetes probes work without a token), and KitClient sends the token of its process.
 *
 * Tokens live in files (Kubernetes Secrets mount them), one token per line (`#` comments and
 * blank lines ignored; several lines = several valid tokens, for rotation). A file is read again
 * when it changes (checked at most once a second), so rotating a Secret needs no restart.
 * Tokens are compared in constant time (SHA-256 of both sides, crypto.timingSafeEqual) and never
 * logged. See docs/security.md.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync, statSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import { metadataInterceptor } from "./intercept";
import type { Logger } from "pino";
import { ConfigError } from "./env";

/**
 * Roles:
 * - `service`: the coordinator calling the model services, pretrain-mix and the model services
 *   pulling weights from each other: every method of the model services;
 * - `operator`: start, cancel and resume runs on the coordinator;
 * - `viewer`: read-only calls: GetRun, ListRuns, WatchRun, GetInfo.
 * `operator` and `service` include `viewer`. Reflection needs any valid token.
 */
export type Role = "service" | "operator" | "viewer";
export const ROLES: readonly Role[] = ["service", "operator", "viewer"];

/** Health stays open: Kubernetes' gRPC probes carry no token. */
export const OPEN_SERVICES: ReadonlySet<string> = new Set(["grpc.health.v1.Health"]);
const REFLECTION_SERVICES = new Set(["grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]);
const COORDINATOR = "rlhf.ppo_coordinator.v1.PpoCoordinatorService";
const OPERATOR_METHODS = new Set(["StartRun", "CancelRun", "ResumeRun"]);
const LABELING = "rlhf.labeling.v1.LabelingService";
/** Labeling methods that only read progress (the rankings themselves are labelers' work: `service`). */
const LABELING_VIEWER_METHODS = new Set(["GetBatch", "WatchBatch", "ListBatches", "GetInfo"]);

/**
 * The role a method needs (`/package.Service/Method`): "none" for health, "any" for reflection,
 * on the coordinator `operator` for StartRun / CancelRun / ResumeRun and `viewer` for the rest,
 * on the labeling service `viewer` for GetBatch / WatchBatch / ListBatches / GetInfo and `service`
 * for SubmitBatch / ListRankings (the coordinator's rankings stage, `rlhf label import|export`),
 * on every other service `viewer` for Get* methods (GetInfo) and `service` for the rest.
 */
export function requiredRole(path: string): Role | "any" | "none" {
  const [, service = "", method = ""] = path.split("/");
  if (OPEN_SERVICES.has(service)) return "none";
  if (REFLECTION_SERVICES.has(service)) return "any";
  if (service === COORDINATOR) return OPERATOR_METHODS.has(method) ? "operator" : "viewer";
  if (service === LABELING) return LABELING_VIEWER_METHODS.has(method) ? "viewer" : "service";
  return method.startsWith("Get") ? "viewer" : "service";
}

/** True when a caller holding `roles` may call a method needing `needed`. */
export function roleAllows(roles: ReadonlySet<Role>, needed: Role | "any" | "none"): boolean {
  if (needed === "none" || needed === "any") return true;
  if (roles.has(needed)) return true;
  return needed === "viewer" && (roles.has("operator") || roles.has("service"));
}

const sha256 = (s: string) => createHash("sha256").update(s, "utf8").digest();

/** Tokens of a file: one per line, `#` comments and blank lines ignored, surrounding spaces trimmed. */
export function parseTokens(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}

/** Smallest token accepted: 16 characters (a generated one has 43). */
export const MIN_TOKEN_LENGTH = 16;

/**
 * A token file, read again when it changes (mtime, size or inode; checked at most every
 * `recheckMs`). A file that cannot be read later keeps the last tokens read (and says so once).
 */
export class TokenFile {
  private hashes: Buffer[] = [];
  private first: string | undefined;
  private stamp = "";
  private checkedAt = 0;
  private warned = false;

  constructor(
    readonly path: string,
    /** Variable that named it, for messages. */
    readonly variable: string,
    private readonly recheckMs = 1000,
    private readonly log?: Logger,
  ) {
    this.reload(true);
  }

  private reload(initial: boolean): void {
    let stamp: string;
    let tokens: string[];
    try {
      const st = statSync(this.path);
      stamp = `${st.ino}:${st.size}:${st.mtimeMs}`;
      if (!initial && stamp === this.stamp) return;
      tokens = parseTokens(readFileSync(this.path, "utf8"));
    } catch (e) {
      if (initial) throw new ConfigError(`${this.variable}: cannot read ${this.path} (${(e as NodeJS.ErrnoException).code ?? "error"})`);
      if (!this.warned) this.log?.warn({ variable: this.variable, path: this.path, err: (e as NodeJS.ErrnoException).code }, "token file unreadable: keeping the tokens read before");
      this.warned = true;
      return;
    }
    const short = tokens.find((t) => t.length < MIN_TOKEN_LENGTH);
    if (tokens.length === 0 || short !== undefined) {
      const why = tokens.length === 0 ? "holds no token" : `holds a token shorter than ${MIN_TOKEN_LENGTH} characters`;
      if (initial) throw new ConfigError(`${this.variable}: ${this.path} ${why}`);
      if (!this.warned) this.log?.warn({ variable: this.variable, path: this.path }, `token file ${why}: keeping the tokens read before`);
      this.warned = true;
      return;
    }
    this.hashes = tokens.map(sha256);
    this.first = tokens[0];
    this.stamp = stamp;
    this.warned = false;
    if (!initial) this.log?.info({ variable: this.variable, path: this.path, tokens: tokens.length }, "token file changed: tokens reloaded");
  }

  private fresh(): void {
    const now = Date.now();
    if (now - this.checkedAt < this.recheckMs) return;
    this.checkedAt = now;
    this.reload(false);
  }

  /** True when `candidateHash` (SHA-256 of a presented token) is one of the file's; constant time per token, every token compared. */
  matches(candidateHash: Buffer): boolean {
    this.fresh();
    let ok = false;
    for (const h of this.hashes) ok = timingSafeEqual(h, candidateHash) || ok;
    return ok;
  }

  /** The file's first token (what a client sends). */
  token(): string {
    this.fresh();
    return this.first as string;
  }
}

/** Which tokens a server accepts, and the roles each grants. */
export interface ServerAuth {
  /** Token files and the roles their tokens grant. */
  files: { file: TokenFile; roles: ReadonlySet<Role> }[];
}

type Env = Record<string, string | undefined>;

/** Variables of the token files a server accepts: RLHF_AUTH_TOKEN_FILE grants every role. */
export const SERVER_TOKEN_VARIABLES: readonly { variable: string; roles: readonly Role[] }[] = [
  { variable: "RLHF_AUTH_TOKEN_FILE", roles: ROLES },
  { variable: "RLHF_SERVICE_TOKEN_FILE", roles: ["service"] },
  { variable: "RLHF_OPERATOR_TOKEN_FILE", roles: ["operator"] },
  { variable: "RLHF_VIEWER_TOKEN_FILE", roles: ["viewer"] },
];

/**
 * The server's authentication from the environment: each of {@link SERVER_TOKEN_VARIABLES} that
 * is set names a token file (read now: a missing or empty file is a ConfigError). Undefined when
 * none is set (no authentication: loopback development and tests).
 */
export function serverAuthFromEnv(env: Env = process.env, log?: Logger): ServerAuth | undefined {
  const files = SERVER_TOKEN_VARIABLES.filter((v) => env[v.variable]).map((v) => ({
    file: new TokenFile(env[v.variable] as string, v.variable, 1000, log),
    roles: new Set(v.roles),
  }));
  return files.length ? { files } : undefined;
}

/** The roles a bearer token grants under `auth` (empty: not a valid token). */
export function rolesOf(auth: ServerAuth, token: string): Set<Role> {
  const h = sha256(token);
  const roles = new Set<Role>();
  for (const f of auth.files) if (f.file.matches(h)) for (const r of f.roles) roles.add(r);
  return roles;
}

/**
 * A check of an HTTP `Authorization` header (`Bearer <token>`) for the viewer role under `auth`:
 * what the Prometheus endpoint asks of a scrape when the service has token files.
 */
export function httpViewerAuthorizer(auth: ServerAuth): (authorization: string | undefined) => boolean {
  return (authorization) => {
    const m = /^Bearer ([\x21-\x7e]{1,4096})$/i.exec(authorization ?? "");
    return m !== null && roleAllows(rolesOf(auth, m[1]), "viewer");
  };
}

/** The token of an `authorization` metadata value `Bearer <token>`; undefined otherwise. */
export function bearerToken(md: grpc.Metadata): string | undefined {
  const v = md.get("authorization");
  if (v.length !== 1 || typeof v[0] !== "string") return undefined;
  const m = /^Bearer ([\x21-\x7e]{1,4096})$/i.exec(v[0]);
  return m?.[1];
}

/**
 * A grpc-js server interceptor enforcing `auth`: UNAUTHENTICATED without a valid token,
 * PERMISSION_DENIED without the role. The answers say nothing about what exists (the same for an
 * unknown method); tokens are never logged, only the method, the peer and the outcome.
 */
export function authInterceptor(auth: ServerAuth, log?: Logger): grpc.ServerInterceptor {
  return metadataInterceptor((path, md, call) => {
    const needed = requiredRole(path);
    if (needed === "none") return undefined;
    const token = bearerToken(md);
    const roles = token === undefined ? new Set<Role>() : rolesOf(auth, token);
    if (roles.size === 0) {
      log?.warn({ method: path, peer: call.getPeer(), code: "UNAUTHENTICATED", reason: token === undefined ? "no token" : "unknown token" }, "rpc refused");
      return { code: grpc.status.UNAUTHENTICATED, details: "missing or invalid bearer token" };
    }
    if (!roleAllows(roles, needed)) {
      log?.warn({ method: path, peer: call.getPeer(), code: "PERMISSION_DENIED", roles: [...roles] }, "rpc refused");
      return { code: grpc.status.PERMISSION_DENIED, details: "the token's role does not allow this call" };
    }
    return undefined;
  });
}

/** Where a client's token comes from: a function read on every call (a file may change). */
export type TokenSource = () => string | undefined;

/**
 * The token a client process sends: RLHF_TOKEN (the token itself), else the first token of
 * RLHF_CLIENT_TOKEN_FILE, else of RLHF_AUTH_TOKEN_FILE (the one token of a laptop session).
 * Undefined when none is set. A file named but unreadable is a ConfigError.
 */
export function clientTokenFromEnv(env: Env = process.env): TokenSource | undefined {
  if (env.RLHF_TOKEN) {
    const t = env.RLHF_TOKEN.trim();
    return () => t;
  }
  const variable = env.RLHF_CLIENT_TOKEN_FILE ? "RLHF_CLIENT_TOKEN_FILE" : env.RLHF_AUTH_TOKEN_FILE ? "RLHF_AUTH_TOKEN_FILE" : undefined;
  if (!variable) return undefined;
  const file = new TokenFile(env[variable] as string, variable);
  return () => file.token();
}

/** `md` (a copy) with `authorization: Bearer <token>` when `token` gives one. */
export function withToken(md: grpc.Metadata | undefined, token: TokenSource | undefined): grpc.Metadata {
  const out = md ? md.clone() : new grpc.Metadata();
  const t = token?.();
  if (t) out.set("authorization", `Bearer ${t}`);
  return out;
}
