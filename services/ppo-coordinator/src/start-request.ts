/**
 * A StartRun request turned into a run's config, before anything is created: size and nesting
 * limits, the `preset` shorthand, validation against the schema, the paths confined to
 * DATA_ROOT, and the user's data files read and checked (a bad line fails StartRun, validate_only
 * included).
 */
import { confinePath, InvalidArgumentError, type PathRoots } from "@rlhf/errors";
import { getTokenizer } from "@rlhf/model/tokens";
import type { ppoCoordinator } from "@rlhf/proto";
import { MAX_CONFIG_DEPTH, PATH_KEYS, RUN_PRESET_NAMES, nestedDeeperThan, mergeRunConfigs, presetRunConfig, resolveRunConfig, type RunConfig, type RunPresetName } from "@rlhf/run-config";
import { loadUserData, type UserData } from "./recipe/user-data";
import { inWorker } from "./recipe/worker";

/**
 * Every file or folder a run config names (`data.files.*`, `model.base_checkpoint`) must resolve,
 * symlinks included, inside DATA_ROOT: PERMISSION_DENIED naming the key otherwise, and
 * INVALID_ARGUMENT for a NUL byte. Checked before any of them is read.
 */
export function checkConfigPaths(config: RunConfig, roots: PathRoots | undefined): void {
  if (!roots) return;
  for (const key of PATH_KEYS) {
    const v = pathAt(config, key);
    if (v === null || v === undefined) continue;
    confinePath(v, key, roots);
  }
}

/** The value at a dotted key of the config (`data.files.sft`). */
function pathAt(config: RunConfig, key: string): unknown {
  let v: unknown = config;
  for (const part of key.split(".")) v = v && typeof v === "object" ? (v as Record<string, unknown>)[part] : undefined;
  return v;
}

/** The resolved config (and its JSON) of a StartRun request, with the user's data read; InvalidArgumentError naming the field otherwise. */
export async function parseStartRequest(req: ppoCoordinator.StartRunRequest, dataRoots: PathRoots | undefined): Promise<{ config: RunConfig; configJson: string; userData: UserData }> {
  if (Buffer.byteLength(req.configJson) > 1024 * 1024) throw new InvalidArgumentError("config_json", "exceeds 1 MiB");
  // An empty request is a mistake, not "every default": that would start a full run.
  if (req.configJson.trim() === "") throw new InvalidArgumentError("config_json", 'is empty: send a run config ("{}" for every default, {"preset": "tiny"} for the smoke run)');
  let json: unknown;
  try {
    json = JSON.parse(req.configJson);
  } catch (e) {
    throw new InvalidArgumentError("config_json", `not valid JSON: ${(e as Error).message}`);
  }
  if (nestedDeeperThan(json, MAX_CONFIG_DEPTH)) throw new InvalidArgumentError("config_json", `is nested more than ${MAX_CONFIG_DEPTH} levels deep`);
  // A top-level "preset" ("tiny" or "default") expands to that demo configuration, which the
  // other keys then override.
  if (typeof json === "object" && json !== null && !Array.isArray(json) && "preset" in json) {
    const { preset, ...rest } = json as Record<string, unknown>;
    if (typeof preset !== "string" || !(RUN_PRESET_NAMES as readonly string[]).includes(preset)) {
      throw new InvalidArgumentError("config_json.preset", `must be one of ${RUN_PRESET_NAMES.join(", ")}, got ${JSON.stringify(preset)}`);
    }
    json = mergeRunConfigs(presetRunConfig(preset as RunPresetName), rest);
  }
  const config = resolveRunConfig(json);
  checkConfigPaths(config, dataRoots);
  // Files are read and tokenised in a worker thread (a big one takes seconds); without files there is nothing to read.
  const names = PATH_KEYS.some((k) => k.startsWith("data.files.") && pathAt(config, k) !== null && pathAt(config, k) !== undefined);
  const userData = names ? await inWorker<UserData>({ job: "user-data", cfg: config }) : loadUserData(config, getTokenizer(config.model.tokenizer));
  if (Buffer.byteLength(req.displayName) > 256) throw new InvalidArgumentError("display_name", "exceeds 256 bytes");
  return { config, configJson: JSON.stringify(config), userData };
}
