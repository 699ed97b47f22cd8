/**
 * Children that die with the CLI. `rlhf demo/run/resume` start the five services as child
 * processes; if the CLI is killed outright (SIGKILL, an OOM kill, a closed terminal) its exit
 * hooks never run. So each child gets a pipe as its standard input whose other end only the CLI
 * holds, and RLHF_EXIT_WITH_PARENT=1: the operating system closes that end when the CLI is gone,
 * however it ended, and the child sees end-of-file and stops itself as on SIGTERM (the service's
 * graceful shutdown). No polling, nothing that a busy event loop could miss for long.
 */
import { UsageError } from "../args";

/** The environment variable that turns the watch on ("1") or off ("0" or unset). */
export const EXIT_WITH_PARENT_ENV = "RLHF_EXIT_WITH_PARENT";

/**
 * When RLHF_EXIT_WITH_PARENT is "1": calls `onParentGone` (default: SIGTERM to this process)
 * once standard input ends or fails. Returns whether the watch is on. Any other value than
 * "0", "1" or unset is a UsageError naming the variable (read once, at start).
 */
export function exitWithParent(env: Record<string, string | undefined> = process.env, onParentGone: () => void = () => process.kill(process.pid, "SIGTERM")): boolean {
  const v = env[EXIT_WITH_PARENT_ENV];
  if (v === undefined || v === "" || v === "0") return false;
  if (v !== "1") throw new UsageError(`${EXIT_WITH_PARENT_ENV} must be 0 or 1, got "${v}"`);
  let fired = false;
  const gone = () => {
    if (fired) return;
    fired = true;
    onParentGone();
  };
  const stdin = process.stdin;
  stdin.on("data", () => undefined); // the CLI writes nothing; read only to see the end
  stdin.once("end", gone);
  stdin.once("error", gone);
  stdin.once("close", gone);
  // The watch alone must not keep the process alive (a service stops when its server does).
  (stdin as unknown as { unref?: () => void }).unref?.();
  return true;
}
