import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { loadAddon } from "@rlhf/torch-backend";

/**
 * The e2e tests run authenticated, as the demo does: unless the environment names one already,
 * a fresh token (every role) in a 0600 file is RLHF_AUTH_TOKEN_FILE for every service these tests
 * start (in this process or as children, which inherit it) and every client they make (KitClient
 * sends it); a call without it is UNAUTHENTICATED.
 */
export const TOKEN_FILE: string = (() => {
  if (process.env.RLHF_AUTH_TOKEN_FILE) return process.env.RLHF_AUTH_TOKEN_FILE;
  const file = join(mkdtempSync(join(tmpdir(), "e2e-token-")), "token");
  writeFileSync(file, randomBytes(32).toString("base64url") + "\n", { mode: 0o600 });
  process.env.RLHF_AUTH_TOKEN_FILE = file;
  return file;
})();

/** Repository root (e2e/dist/.. or e2e/src/..). */
export const ROOT = join(__dirname, "..", "..");
/** The built `rlhf` entry point. */
export const RLHF = join(ROOT, "cli", "dist", "main.js");

/**
 * The compute backend of the services (and in-process models) these tests start: RLHF_BACKEND when
 * set (CI runs the suite once as is, and the backend-equality tests on both), else the one
 * initBackend picks by default here: torch where its addon is built, else wasm.
 */
export const BACKEND = process.env.RLHF_BACKEND?.trim() || (loadAddon().ok ? "torch" : "wasm");

/** A free loopback port. */
export { freePort } from "@rlhf/grpc-kit";

/** A child process with its output collected. */
export interface Proc {
  child: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

/** Every child `start` spawned that has not exited yet. */
const running = new Set<ChildProcess>();
// A test that fails half-way leaves its children (a watcher, a run) running: their pipes would keep
// this test file's process alive and the runner waiting for it. They are killed once its tests end.
after(() => {
  for (const child of running) child.kill("SIGKILL");
});

/** Starts `node ...args` (in `cwd`, default this process's), its output collected; killed when the file's tests end. */
export function start(args: string[], env: Record<string, string | undefined> = {}, cwd?: string): Proc {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], cwd });
  running.add(child);
  child.once("exit", () => running.delete(child));
  let buf = "";
  child.stdout!.on("data", (d) => (buf += d));
  child.stderr!.on("data", (d) => (buf += d));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return { child, out: () => buf, exited };
}

/** Resolves with the exit code, or kills the process after `ms`. */
export async function exitWithin(p: Proc, ms: number): Promise<number | null> {
  const t = setTimeout(() => p.child.kill("SIGKILL"), ms);
  const code = await p.exited;
  clearTimeout(t);
  return code;
}

/** A run config small enough for a test: every stage, two PPO iterations per variant, a checkpoint after each. */
export const MICRO = {
  model: { preset: "tiny", n_positions: 256 },
  data: { builtin: { sft_prompts: 32, rm_prompts: 16, ppo_prompts: 16, eval_prompts: 8 } },
  pretrain: { steps: 4, batch_size: 4, sequence_length: 64, warmup_steps: 1 },
  sft: { epochs: 1, batch_size: 8 },
  rankings: { prompts: 16, max_new_tokens: 16 },
  reward_model: { epochs: 1, batch_size: 4 },
  ppo: { iterations: 2, prompts_per_iteration: 8, minibatch_size: 4, max_new_tokens: 16, ptx: { sequences: 2, sequence_length: 32 } },
  evaluation: { prompts: 8, max_new_tokens: 16, pretrain_validation_sequences: 4, samples_in_report: 2 },
  checkpoint: { every_iterations: 1, keep_last: 1 },
};
