/** Starts the labeling service in this process on free ports, against a fresh database. */
import { createLogger } from "@rlhf/grpc-kit";
import { startLabeling, type LabelingApp } from "../app";
import { loadConfig } from "../config";
import { freshDatabase, type TestDatabase } from "./databases";

export async function startTestApp(kind: "sqlite" | "postgres" = "sqlite", env: Record<string, string> = {}): Promise<{ app: LabelingApp; db: TestDatabase; adminToken: string; stop(): Promise<void> }> {
  const db = await freshDatabase(kind);
  const cfg = loadConfig({ GRPC_PORT: "0", HTTP_PORT: "0", METRICS_PORT: "0", ...db.env, ...env });
  const app = await startLabeling(cfg, createLogger({ service: "labeling", level: "warn" }));
  const { readFileSync } = await import("node:fs");
  return {
    app,
    db,
    adminToken: readFileSync(cfg.adminTokenFile, "utf8").trim(),
    stop: async () => {
      await app.stop(500);
      await db.cleanup();
    },
  };
}
