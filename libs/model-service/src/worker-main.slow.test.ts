// A service process whose compute worker dies exits with status 1 and says why (runServiceMain),
// so that its supervisor (Kubernetes, `rlhf serve`) restarts it, instead of living on unable to
// compute. A real process, a real socket.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { checkHealth } from "@rlhf/grpc-kit";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";
import { BUSY_SERVICE } from "./testing/busy-compute";

test("a service process whose compute worker dies logs why and exits with status 1", async () => {
  const child = spawn(process.execPath, ["--import", "tsx", join(__dirname, "testing/busy-main.ts")], { env: { ...process.env, PORT: "0" }, stdio: ["ignore", "pipe", "pipe"] });
  const lines: Record<string, unknown>[] = [];
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  let buffered = "";
  const listening = new Promise<string>((resolve) => {
    child.stdout.on("data", (d: Buffer) => {
      buffered += d.toString();
      const parts = buffered.split("\n");
      buffered = parts.pop() ?? "";
      for (const l of parts.filter(Boolean)) {
        const line = JSON.parse(l) as Record<string, unknown>;
        lines.push(line);
        if (line.msg === "listening") resolve(String(line.address));
      }
    });
  });
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  const timer = setTimeout(() => child.kill("SIGKILL"), testDeadlineMs(120_000));
  try {
    const address = await Promise.race([listening, exited.then((code) => Promise.reject(new Error(`the process exited (${code}) before listening: ${stderr}`)))]);
    assert.equal(await checkHealth(address, ""), "SERVING");
    const Busy = grpc.makeGenericClientConstructor(BUSY_SERVICE, "Busy");
    const client = new Busy(address, grpc.credentials.createInsecure()) as unknown as grpc.Client & { exit(req: object, cb: (err: grpc.ServiceError | null) => void): void };
    // The worker ends itself (process.exit inside a worker thread ends that thread only).
    const err = await new Promise<grpc.ServiceError | null>((resolve) => client.exit({}, resolve));
    client.close();
    assert.ok(err, "the call whose worker died fails");
    assert.equal(await exited, 1, `exit status (stderr: ${stderr})`);
    const fatal = lines.find((l) => l.level === "fatal" || l.level === 60);
    assert.ok(fatal, `a fatal log line, got: ${lines.map((l) => l.msg).join(" | ")}`);
    assert.equal(fatal.reason, "exit code 7");
    assert.match(String(fatal.msg), /the compute worker stopped: exiting so that the service is restarted/);
  } finally {
    clearTimeout(timer);
    child.kill("SIGKILL");
  }
});
