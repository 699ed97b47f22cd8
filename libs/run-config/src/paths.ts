/**
 * Paths in a run config file: the keys that name files or folders must be absolute in a
 * resolved config (the coordinator and the model services may run with other working
 * directories), so a config file's relative paths are made absolute from the file's folder
 * before it is sent (`rlhf run` does this).
 */
import { isAbsolute, resolve } from "node:path";
import { RUN_CONFIG_SCHEMA } from "./run-config";
import { getPath, leaves } from "./schema";

/** Keys of the run config that name a file or folder (`model.base_checkpoint`, `data.files.*`). */
export const PATH_KEYS: readonly string[] = Object.freeze(leaves(RUN_CONFIG_SCHEMA).filter((l) => l.leaf.isPath).map((l) => l.path));

/**
 * A copy of a run config (parsed JSON, before validation) whose relative paths at
 * {@link PATH_KEYS} are made absolute from `baseDir` (the config file's folder). Absolute paths,
 * nulls, values that are not non-empty strings (validation reports those) and every other key
 * are left as they are; the input is not modified.
 */
export function resolveConfigPaths(json: unknown, baseDir: string): unknown {
  if (typeof json !== "object" || json === null || Array.isArray(json)) return json;
  const out = JSON.parse(JSON.stringify(json)) as Record<string, unknown>;
  for (const key of PATH_KEYS) {
    const v = getPath(out, key);
    if (typeof v !== "string" || v === "" || isAbsolute(v)) continue;
    const parts = key.split(".");
    let obj = out;
    for (const p of parts.slice(0, -1)) obj = obj[p] as Record<string, unknown>;
    obj[parts[parts.length - 1]] = resolve(baseDir, v);
  }
  return out;
}
