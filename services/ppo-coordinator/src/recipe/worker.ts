/**
 * CPU-bound preparation off the coordinator's event loop: a job runs in a worker thread
 * (./data-worker.ts) and its plain result comes back; a domain error it throws comes back as the
 * same error (code, field, message), so that StartRun still answers INVALID_ARGUMENT naming the
 * config key and the data file's line.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { DomainError, FailedPreconditionError, InvalidArgumentError, NotFoundError, PermissionDeniedError, type ErrorCode } from "@rlhf/errors";
import type { RunConfig } from "@rlhf/run-config";

/** What a worker can be asked to do. */
export type WorkerJob = { job: "recipe-data"; cfg: RunConfig } | { job: "user-data"; cfg: RunConfig };

/** A worker's answer: the result, or the error it threw. */
export type WorkerReply = { ok: true; value: unknown } | { ok: false; error: { code?: ErrorCode; field?: string; message: string; stack?: string } };

/** The error a worker threw, rebuilt (a domain error keeps its class, code and field). */
function rebuild(e: Extract<WorkerReply, { ok: false }>["error"]): Error {
  if (!e.code) return Object.assign(new Error(e.message), { stack: e.stack });
  const raw = e.field && e.message.startsWith(`${e.field}: `) ? e.message.slice(e.field.length + 2) : e.message;
  switch (e.code) {
    case "INVALID_ARGUMENT":
      return new InvalidArgumentError(e.field ?? "", raw);
    case "NOT_FOUND":
      return new NotFoundError(e.field ?? "", raw);
    case "PERMISSION_DENIED":
      return new PermissionDeniedError(e.field ?? "", raw);
    case "FAILED_PRECONDITION":
      return new FailedPreconditionError(raw);
    default:
      return new DomainError(e.code, raw, e.field);
  }
}

/** Runs `job` in a new worker thread; resolves with its result. */
export function inWorker<T>(job: WorkerJob): Promise<T> {
  const js = join(__dirname, "data-worker.js");
  // Built (dist): the compiled worker. From sources (tests through tsx): tsx loads the .ts one.
  const worker = existsSync(js)
    ? new Worker(js, { workerData: job })
    : new Worker(`require(${JSON.stringify(require.resolve("tsx/cjs"))}); require(${JSON.stringify(join(__dirname, "data-worker.ts"))});`, { eval: true, workerData: job });
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    worker.once("message", (m: WorkerReply) => {
      settled = true;
      if (m.ok) resolve(m.value as T);
      else reject(rebuild(m.error));
      void worker.terminate();
    });
    worker.once("error", (e) => {
      settled = true;
      reject(e);
    });
    worker.once("exit", (code) => {
      if (!settled) reject(new Error(`the data worker exited with code ${code} before it answered`));
    });
  });
}
