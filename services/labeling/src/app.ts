import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { randomBytes } from "node:crypto";
import { descriptorSetPath } from "@rlhf/proto";
import { ConfigError, parseTokens, startServer, MIN_TOKEN_LENGTH, type Logger, type RunningServer } from "@rlhf/grpc-kit";
import { isLoopback, insecureFromEnv } from "@rlhf/grpc-kit";
import { LabelingStore } from "./store/store";
import { labelingService } from "./server";
import { startHttp, type RunningHttp } from "./http/server";
import { seedSampleBatch } from "./seed";
import type { LabelingConfig } from "./config";

/** A running labeling service (used by main.ts and by the tests). */
export interface LabelingApp {
  server: RunningServer;
  http: RunningHttp;
  store: LabelingStore;
  /** The demo labeler's token when this start seeded the sample batch. */
  seeded?: { demoToken: string };
  close(): Promise<void>;
  stop(graceMs?: number): Promise<void>;
}

/**
 * The admin token: the first token of the file, which is created (mode 0600, a fresh random
 * token) when missing. Read again on every use, so that a rotated file takes effect.
 */
export function readOrCreateAdminToken(file: string): () => string {
  if (!existsSync(file)) {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, randomBytes(32).toString("base64url") + "\n", { mode: 0o600, flag: "wx" });
  }
  const read = () => {
    const t = parseTokens(readFileSync(file, "utf8"))[0];
    if (!t || t.length < MIN_TOKEN_LENGTH) throw new ConfigError(`LABELING_ADMIN_TOKEN_FILE: ${file} holds no token of at least ${MIN_TOKEN_LENGTH} characters`);
    return t;
  };
  let last = read();
  return () => {
    try {
      last = read();
    } catch {
      // an unreadable file keeps the token read before
    }
    return last;
  };
}

/** Opens the database (migrating it), starts gRPC and the web UI, reports SERVING. */
export async function startLabeling(cfg: LabelingConfig, log: Logger): Promise<LabelingApp> {
  if (!isLoopback(cfg.httpHost) && !cfg.secureCookies && !insecureFromEnv(process.env)) {
    throw new ConfigError(`HTTP_HOST ${cfg.httpHost} is not loopback: serve the web UI behind HTTPS and set HTTP_SECURE_COOKIES=1 (or RLHF_INSECURE=1 to serve plain HTTP anyway)`);
  }
  const adminToken = readOrCreateAdminToken(cfg.adminTokenFile);
  const store = await LabelingStore.open(cfg.database, { assignmentTimeoutMs: cfg.assignmentTimeoutMs, undoWindowMs: cfg.undoWindowMs, sessionTtlMs: cfg.sessionTtlMs });
  log.info({ storage: store.kind, schemaVersion: store.schemaVersion }, "database ready");
  const seeded = cfg.seedSample ? await seedSampleBatch(store) : undefined;
  if (seeded) log.info("empty database: seeded the sample batch and the demo labeler");
  let http: RunningHttp | undefined;
  let server: RunningServer | undefined;
  try {
    http = await startHttp({ store, log, adminToken, host: cfg.httpHost, port: cfg.httpPort, secureCookies: cfg.secureCookies, publicUrl: cfg.publicUrl, sessionTtlMs: cfg.sessionTtlMs });
    const web = http;
    server = await startServer({
      services: [labelingService(store, { maxTextChars: cfg.maxTextChars, maxBatchComparisons: cfg.maxBatchComparisons }, cfg.overlapFraction, () => web.url, log)],
      log,
      host: cfg.host,
      port: cfg.port,
      maxReceiveMessageBytes: cfg.maxReceiveBytes,
      maxSendMessageBytes: 8 * 1024 * 1024,
      descriptorSetPath,
    });
  } catch (e) {
    await http?.close();
    await store.close();
    throw e;
  }
  server.setServing(true);
  const s = server;
  const h = http;
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await h.close();
    await store.close();
  };
  return {
    server: s,
    http: h,
    store,
    seeded,
    close,
    stop: async (graceMs) => {
      await s.shutdown(graceMs);
      await close();
    },
  };
}
