/** The worker thread of ./worker.ts: runs one job with its `workerData` and posts the reply. */
import { parentPort, workerData } from "node:worker_threads";
import { DomainError } from "@rlhf/errors";
import { getTokenizer } from "@rlhf/model/tokens";
import { plainRecipeData } from "./data";
import { loadUserData } from "./user-data";
import type { WorkerJob, WorkerReply } from "./worker";

function run(job: WorkerJob): unknown {
  switch (job.job) {
    case "recipe-data":
      return plainRecipeData(job.cfg);
    case "user-data":
      return loadUserData(job.cfg, getTokenizer(job.cfg.model.tokenizer));
  }
}

let reply: WorkerReply;
try {
  reply = { ok: true, value: run(workerData as WorkerJob) };
} catch (e) {
  const err = e as Error;
  reply = { ok: false, error: { message: err.message, stack: err.stack, ...(e instanceof DomainError ? { code: e.code, field: e.field } : {}) } };
}
parentPort?.postMessage(reply);
