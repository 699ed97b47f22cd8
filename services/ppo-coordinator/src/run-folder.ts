/** A run folder's files as the run store reads them back: `run.json`, `events.jsonl`, `recipe-state.json`. */
import { join } from "node:path";
import { existsSync } from "node:fs";
import { hostname } from "node:os";
import { readFile, rm, writeFile } from "node:fs/promises";
import { writeJsonAtomic } from "@rlhf/errors";
import { ppoCoordinator } from "@rlhf/proto";
import type { Logger } from "@rlhf/grpc-kit";
import { resolveRunConfig, type RunConfig } from "@rlhf/run-config";
import { emptyState, stateFromJson, type RecipeState } from "./recipe/records";

/**
 * Reads a run folder back. A coordinator killed while appending leaves a torn last line in
 * events.jsonl: it is dropped (its event is lost, the rest stands) and the file rewritten.
 */
export async function readRunFolder(dir: string, log: Logger): Promise<{ run: ppoCoordinator.Run; config: RunConfig; events: ppoCoordinator.RunEvent[]; state: RecipeState }> {
  const run = ppoCoordinator.Run.fromJSON(JSON.parse(await readFile(join(dir, "run.json"), "utf8")));
  const config = resolveRunConfig(JSON.parse(run.configJson));
  const lines = (await readFile(join(dir, "events.jsonl"), "utf8").catch(() => "")).split("\n").filter((l) => l.trim() !== "");
  const parsed = (l: string) => {
    try {
      return ppoCoordinator.RunEvent.fromJSON(JSON.parse(l));
    } catch {
      return undefined;
    }
  };
  if (lines.length && !parsed(lines[lines.length - 1])) {
    log.warn({ dir, line: lines.length }, "events.jsonl ends with a torn line (the coordinator was killed while writing it): dropped");
    lines.pop();
    await writeFile(join(dir, "events.jsonl"), lines.map((l) => l + "\n").join(""));
  }
  const events = lines.map((l) => ppoCoordinator.RunEvent.fromJSON(JSON.parse(l)));
  const statePath = join(dir, "recipe-state.json");
  const state = existsSync(statePath) ? stateFromJson(JSON.parse(await readFile(statePath, "utf8"))) : emptyState();
  return { run, config, events, state };
}

/**
 * `driver.json` in a run folder while a coordinator executes the run: its process id and host.
 * A coordinator that is killed (SIGKILL, a crash) cannot record the run's end; `rlhf watch` of
 * the folder then sees that the process named here is gone and stops waiting.
 */
export const DRIVER_MARK = "driver.json";

export async function writeDriverMark(runDir: string): Promise<void> {
  await writeJsonAtomic(join(runDir, DRIVER_MARK), { pid: process.pid, host: hostname(), since: new Date().toISOString() });
}

export async function removeDriverMark(runDir: string): Promise<void> {
  await rm(join(runDir, DRIVER_MARK), { force: true });
}
