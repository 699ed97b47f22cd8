/**
 * The run that `rlhf resume` names: a run folder (a path) or a run id under the runs folder. Every
 * mistake is a UsageError before anything starts, so that no service writes its log beside a
 * folder that holds no run.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { basename, isAbsolute, join, relative, resolve } from "node:path";
import { UsageError } from "./args";
import { cliCommand } from "./invocation";

/** A run id: 1-64 characters of a-z, 0-9 and -. */
export const RUN_ID = /^[a-z0-9-]{1,64}$/;

/** Whether `arg` is written as a path (`runs/x`, `./x`, `.`) rather than a bare name. */
export function isPathArgument(arg: string): boolean {
  return arg.includes("/") || arg.includes("\\") || arg === "." || arg === "..";
}

function isRunFolder(dir: string): boolean {
  return existsSync(join(dir, "run.json")) && statSync(dir).isDirectory();
}

/** A folder as the user would type it: relative to the current directory when inside it, else absolute. */
export function shown(dir: string): string {
  const rel = relative(process.cwd(), dir);
  return rel === "" ? "." : rel.startsWith("..") || isAbsolute(rel) ? dir : rel;
}

/** Up to five run ids in `dir` ("" when none), for an error message. */
function runsIn(dir: string): string {
  let names: string[];
  try {
    names = readdirSync(dir).filter((n) => RUN_ID.test(n) && isRunFolder(join(dir, n)));
  } catch {
    return "";
  }
  if (names.length === 0) return "";
  names.sort();
  return ` (runs in it: ${names.slice(0, 5).join(", ")}${names.length > 5 ? ", ..." : ""})`;
}

/**
 * The run folder and run id `arg` names for `command` ("rlhf resume"): a path to a run folder
 * (it holds run.json), or a run id whose folder is in `runsDir` (a bare name that is not there
 * may still be a folder here).
 */
export function resolveRunFolder(arg: string, runsDir: string, command: string): { runDir: string; runId: string } {
  const how = `${command} takes a run folder (${shown(join(runsDir, "<run id>"))}) or a run id, e.g. ${cliCommand()} ${command.replace(/^rlhf /, "")} ${shown(join(runsDir, "<run id>"))}`;
  let dir = resolve(arg);
  if (!isPathArgument(arg) && RUN_ID.test(arg) && existsSync(join(runsDir, arg))) dir = join(runsDir, arg);
  else if (!existsSync(dir)) {
    if (isPathArgument(arg)) throw new UsageError(`run folder ${arg} does not exist`);
    throw new UsageError(`no run "${arg}" in ${shown(runsDir)} (--runs-dir) and no folder ${arg} here`);
  }
  if (!statSync(dir).isDirectory()) throw new UsageError(`${arg} is not a folder: ${how}`);
  if (!existsSync(join(dir, "run.json"))) throw new UsageError(`${arg} is not a run folder (it has no run.json)${runsIn(dir)}: ${how}`);
  const runId = basename(dir);
  if (!RUN_ID.test(runId)) throw new UsageError(`${arg} is not a run folder: its name "${runId}" is not a run id (a-z, 0-9 and -)`);
  return { runDir: dir, runId };
}
