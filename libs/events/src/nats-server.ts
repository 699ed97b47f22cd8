/**
 * A real nats-server with JetStream as a child process, for tests and local trials:
 * `nats-server -js -sd <dir> -a 127.0.0.1 -p <port>`. The binary is NATS_SERVER_BIN, else
 * /usr/sbin/nats-server when it exists, else `nats-server` on the PATH.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "@rlhf/errors";

/** A running (or stopped) nats-server. */
export interface NatsServer {
  /** nats://127.0.0.1:<port> */
  url: string;
  port: number;
  /** JetStream store folder (kept across restarts). */
  storeDir: string;
  /** Its output so far. */
  output(): string;
  /** Stops it (SIGTERM waits for a clean exit; SIGKILL does not let it flush). */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again on the same port and store folder. */
  restart(): Promise<void>;
}

/** Options of {@link startNatsServer}. */
export interface NatsServerOptions {
  /** Default: a free port. */
  port?: number;
  /** Default: a new temporary folder. */
  storeDir?: string;
  /** Most time to become ready. Default 15,000 ms. */
  readyTimeoutMs?: number;
}

/** The nats-server binary (see the module comment). */
export function natsServerBin(): string {
  return process.env.NATS_SERVER_BIN || (existsSync("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "nats-server");
}

/** Starts nats-server with JetStream and resolves once it accepts clients. */
export async function startNatsServer(o: NatsServerOptions = {}): Promise<NatsServer> {
  const port = o.port ?? (await freePort());
  const storeDir = o.storeDir ?? mkdtempSync(join(tmpdir(), "nats-js-"));
  let out = "";
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  const launch = async () => {
    const c = spawn(natsServerBin(), ["-js", "-sd", storeDir, "-a", "127.0.0.1", "-p", String(port)], { stdio: ["ignore", "pipe", "pipe"] });
    child = c;
    exited = new Promise((r) => c.once("exit", () => r()));
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`nats-server did not become ready within ${o.readyTimeoutMs ?? 15_000} ms:\n${out}`)), o.readyTimeoutMs ?? 15_000);
      const onData = (d: Buffer) => {
        out += d.toString();
        if (out.includes("Server is ready")) {
          clearTimeout(t);
          resolve();
        }
      };
      c.stdout!.on("data", onData);
      c.stderr!.on("data", onData);
      c.once("error", (e) => {
        clearTimeout(t);
        reject(new Error(`cannot start ${natsServerBin()}: ${e.message}`));
      });
      c.once("exit", (code) => {
        clearTimeout(t);
        reject(new Error(`nats-server exited with ${code} before it was ready:\n${out}`));
      });
    });
  };
  await launch();
  const server: NatsServer = {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    output: () => out,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child && child.exitCode === null && child.signalCode === null) {
        child.kill(signal);
        await exited;
      }
    },
    async restart() {
      await server.stop();
      out = "";
      await launch();
    },
  };
  return server;
}
