import { join, resolve } from "node:path";
import { ConfigError, envInt, envMetrics, envOptional, envPort, envString, listenEnv, parseEnv, type MetricsEndpointConfig } from "@rlhf/grpc-kit";
import type { DbTarget } from "./store/db";

/** Process configuration of the labeling service, from the environment. */
export interface LabelingConfig extends MetricsEndpointConfig {
  /** GRPC_HOST: interface of the gRPC server. Default 127.0.0.1. */
  host: string;
  /** GRPC_PORT: its port; 0 picks a free one. Default 50055. */
  port: number;
  /** HTTP_HOST: interface of the web UI. Default 127.0.0.1. */
  httpHost: string;
  /** HTTP_PORT: port of the web UI; 0 picks a free one. Default 8055. */
  httpPort: number;
  /** LABELING_DATA_DIR: folder of the SQLite file and the admin token file. Default `labeling` (from the working directory). */
  dataDir: string;
  /**
   * The database: DATABASE_URL (postgres://...) when set, with DATABASE_SCHEMA (default: the
   * connection's search_path) for its tables; else the SQLite file LABELING_DB (default
   * `<LABELING_DATA_DIR>/labeling.db`).
   */
  database: DbTarget;
  /** LABELING_ADMIN_TOKEN_FILE: the admin token (first line); created with a fresh token (mode 0600) when missing. Default `<LABELING_DATA_DIR>/admin-token`. */
  adminTokenFile: string;
  /** OVERLAP_PERCENT: default share (percent) of a batch's comparisons that go to two labelers. Default 10. */
  overlapFraction: number;
  /** MAX_TEXT_CHARS: most characters of a prompt or a response. Default 8,000. */
  maxTextChars: number;
  /** MAX_BATCH_COMPARISONS: most comparisons in one batch. Default 10,000. */
  maxBatchComparisons: number;
  /** ASSIGNMENT_TIMEOUT_MS: an open comparison nobody submitted for this long goes to another labeler. Default 1,800,000 (30 min). */
  assignmentTimeoutMs: number;
  /** UNDO_WINDOW_MS: how long after submitting a labeler may undo it. Default 600,000 (10 min). */
  undoWindowMs: number;
  /** SESSION_TTL_MS: web sessions last this long. Default 43,200,000 (12 h). */
  sessionTtlMs: number;
  /** LABELING_PUBLIC_URL: the web UI's address as people reach it (invite links); default http://HTTP_HOST:HTTP_PORT/. */
  publicUrl?: string;
  /** HTTP_SECURE_COOKIES=1: session cookies get `Secure` (the UI is served over HTTPS by a proxy). Default 0. */
  secureCookies: boolean;
  /** LABELING_SEED_SAMPLE=1: submit a small sample batch and a `demo` labeler when the database is empty (`rlhf label serve`). Default 0. */
  seedSample: boolean;
  /** MAX_RECEIVE_BYTES: largest gRPC message accepted. Default 64 MiB (a batch of long texts). */
  maxReceiveBytes: number;
  /** SHUTDOWN_GRACE_MS: time in-flight calls get on SIGTERM. Default 10,000. */
  shutdownGraceMs: number;
}

function envFlag(env: Record<string, string | undefined>, name: string): boolean {
  const v = envOptional(env, name);
  if (v === undefined || v === "0") return false;
  if (v === "1") return true;
  throw new ConfigError(`${name} must be 0 or 1, got "${v}"`);
}

/** GRPC_HOST / GRPC_PORT from the services' shared table (the deploy checks read the default port from it). */
const LISTEN_ENV = listenEnv(50055);

/** Parses the environment once; throws ConfigError with one clear line. */
export function loadConfig(env: Record<string, string | undefined> = process.env): LabelingConfig {
  const dataDir = resolve(envString(env, "LABELING_DATA_DIR", "labeling"));
  const url = envOptional(env, "DATABASE_URL");
  if (url !== undefined && !/^postgres(ql)?:\/\//.test(url)) throw new ConfigError(`DATABASE_URL must be a postgres:// or postgresql:// URL`);
  const schema = envOptional(env, "DATABASE_SCHEMA");
  if (schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) throw new ConfigError(`DATABASE_SCHEMA must match [a-z_][a-z0-9_]* (at most 63 characters), got "${schema}"`);
  if (url !== undefined && envOptional(env, "LABELING_DB") !== undefined) throw new ConfigError("set DATABASE_URL or LABELING_DB, not both");
  const publicUrl = envOptional(env, "LABELING_PUBLIC_URL");
  if (publicUrl !== undefined && !/^https?:\/\/[^\s]+$/.test(publicUrl)) throw new ConfigError(`LABELING_PUBLIC_URL must be an http:// or https:// URL, got "${publicUrl}"`);
  return {
    ...parseEnv(LISTEN_ENV, env),
    httpHost: envString(env, "HTTP_HOST", "127.0.0.1"),
    httpPort: envPort(env, "HTTP_PORT", 8055),
    dataDir,
    database: url !== undefined ? { kind: "postgres", url, schema } : { kind: "sqlite", file: resolve(envString(env, "LABELING_DB", join(dataDir, "labeling.db"))) },
    adminTokenFile: resolve(envString(env, "LABELING_ADMIN_TOKEN_FILE", join(dataDir, "admin-token"))),
    overlapFraction: envInt(env, "OVERLAP_PERCENT", 10, 0, 100) / 100,
    maxTextChars: envInt(env, "MAX_TEXT_CHARS", 8000, 1, 1_000_000),
    maxBatchComparisons: envInt(env, "MAX_BATCH_COMPARISONS", 10_000, 1, 1_000_000),
    assignmentTimeoutMs: envInt(env, "ASSIGNMENT_TIMEOUT_MS", 30 * 60_000, 1000, 7 * 24 * 3600_000),
    undoWindowMs: envInt(env, "UNDO_WINDOW_MS", 10 * 60_000, 0, 24 * 3600_000),
    sessionTtlMs: envInt(env, "SESSION_TTL_MS", 12 * 3600_000, 60_000, 30 * 24 * 3600_000),
    publicUrl: publicUrl && (publicUrl.endsWith("/") ? publicUrl : publicUrl + "/"),
    secureCookies: envFlag(env, "HTTP_SECURE_COOKIES"),
    seedSample: envFlag(env, "LABELING_SEED_SAMPLE"),
    maxReceiveBytes: envInt(env, "MAX_RECEIVE_BYTES", 64 * 1024 * 1024, 1024, 1024 ** 3),
    shutdownGraceMs: envInt(env, "SHUTDOWN_GRACE_MS", 10_000, 0, 600_000),
    ...envMetrics(env),
  };
}
