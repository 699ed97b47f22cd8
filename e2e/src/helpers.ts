import { spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";

/** Repository root (e2e/dist/.. or e2e/src/..). */
export const ROOT = join(__dirname, "..", "..");
/** The built `rlhf` entry point. */
export const RLHF = join(ROOT, "cli", "dist", "main.js");

/** A free loopback port. */
export { freePort } from "@rlhf/grpc-kit";

/** A child process with its output collected. */
export interface Proc {
  child: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

/** Starts `node ...args` (in `cwd`, default this process's), its output collected. */
export function start(args: string[], env: Record<string, string | undefined> = {}, cwd?: string): Proc {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"], cwd });
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
