/**
 * Service kit: gRPC server start-up (health, reflection, limits, graceful shutdown), handler
 * wrappers that map domain errors to statuses in one place, structured logs, a client with
 * deadlines and idempotent-only retries, a bounded serial queue, environment parsing, and the
 * RPC / queue metrics every service exports (rpc.server.duration, rlhf.queue.*).
 */
export * from "./logger";
export * from "./errors";
export * from "./handlers";
export * from "./header-first";
export * from "./server";
export * from "./client";
export * from "./queue";
export * from "./env";
export * from "./env-table";
export * from "./probe";
export * from "./main";
export * from "./metrics";
export * from "./auth";
export * from "./tls";
export * from "./replicas";
export * from "./replica-routes";
export * from "./lease";
