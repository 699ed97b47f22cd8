import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { createServer, type AddressInfo } from "node:net";
import { LabelingClient, WebSession } from "@rlhf/labeling-client";
import { DATABASE_KINDS, freshDatabase } from "./testing/databases";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

const MAIN = join(__dirname, "..", "dist", "main.js");

/** Starts the built service as a child process; resolves with its addresses once it printed them. */
function startChild(env: Record<string, string | undefined>): Promise<{ child: ChildProcess; url: string; grpc: string; exited: Promise<number | null> }> {
  const child = spawn(process.execPath, [MAIN], { env: env as NodeJS.ProcessEnv, stdio: ["ignore", "pipe", "pipe"] });
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  let out = "";
  let err = "";
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  return new Promise((resolve, reject) => {
    // Only a hang reaches this: the service prints its line within seconds.
    const t = setTimeout(() => reject(new Error(`no start line within ${testDeadlineMs(120_000)} ms; stderr: ${err.slice(-2000)}`)), testDeadlineMs(120_000));
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /labeling: web UI (\S+) .* gRPC (\S+) /.exec(out);
      if (m) {
        clearTimeout(t);
        resolve({ child, url: m[1], grpc: m[2], exited });
      }
    });
    void exited.then((code) => {
      clearTimeout(t);
      reject(new Error(`the service exited (${code}) before it started: ${err.slice(-2000)}`));
    });
  });
}

for (const kind of DATABASE_KINDS) {
  test(`${kind}: a labeling service killed with SIGKILL mid-batch loses no acknowledged ranking, and its sessions survive`, { skip: !existsSync(MAIN) && "run pnpm build first" }, async () => {
    const db = await freshDatabase(kind);
    // The same web port after the restart, so that the labelers' sessions (cookies) still apply.
    const env: Record<string, string | undefined> = { ...process.env, ...db.env, GRPC_PORT: "0", HTTP_PORT: String(await freePort()), METRICS_PORT: "0", LOG_LEVEL: "warn" };
    for (const k of Object.keys(env)) if (k.startsWith("RLHF_") && k.endsWith("TOKEN_FILE")) delete env[k];
    let s = await startChild(env);
    try {
      const grpcClient = new LabelingClient(s.grpc, { token: null });
      await grpcClient.submitBatch("kill-test", Array.from({ length: 60 }, (_, i) => ({ key: `c${i}`, prompt: `prompt ${i}`, responses: ["a", "b", "c"] })), { overlapFraction: 0 });
      grpcClient.close();
      const admin = await WebSession.signIn(s.url, readToken(db.env.LABELING_DATA_DIR));
      const labelers = await Promise.all(["l1", "l2", "l3"].map(async (n) => WebSession.signIn(s.url, (await admin.createLabeler(n)).token)));
      // Three labelers submit as fast as they can; the service is killed once 15 rankings are acknowledged.
      const acked: string[] = [];
      let killed = false;
      const work = labelers.map(async (l) => {
        while (!killed) {
          let a;
          try {
            a = await l.next();
            if (!a) return;
            await l.submit(a.id, [0, 1, 2]);
          } catch {
            return; // the service is gone
          }
          acked.push(`${l.name}:${a.key}`);
          if (acked.length >= 15 && !killed) {
            killed = true;
            s.child.kill("SIGKILL");
          }
        }
      });
      await Promise.all(work);
      assert.equal(await s.exited, null); // killed by the signal, not exited
      s = await startChild(env);
      const after = new LabelingClient(s.grpc, { token: null });
      const stored = new Set((await after.listRankings("kill-test")).map((r) => `${r.labeler}:${r.key}`));
      for (const a of acked) assert.ok(stored.has(a), `acknowledged ranking ${a} lost`);
      // At most the submissions in flight at the kill (one per labeler) were stored without an answer.
      assert.ok(stored.size <= acked.length + labelers.length, `${stored.size} stored for ${acked.length} acknowledged`);
      assert.equal((await after.getBatch("kill-test")).rankings, stored.size);
      after.close();
      // Sessions live in the database: the labelers carry on without signing in again.
      const next = await labelers[0].next();
      assert.ok(next, "a comparison after the restart");
      await labelers[0].submit(next.id, [2, 1, 0]);
    } finally {
      s.child.kill("SIGTERM");
      await s.exited;
      await db.cleanup();
    }
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

function readToken(dir: string): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require("node:fs") as typeof import("node:fs")).readFileSync(join(dir, "admin-token"), "utf8").trim();
}
