/**
 * The `config.json` of a checkpoint folder, read without TensorFlow.js (the tokenizer needs it,
 * and the coordinator loads no model).
 */
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { InvalidArgumentError, NotFoundError, readJsonFile } from "@rlhf/errors";
import { type GPT2Config, fromHfConfig } from "./config";

/** File names inside a checkpoint folder. */
export const CONFIG_FILE = "config.json";
export const WEIGHTS_FILE = "model.safetensors";

async function checkFolder(dir: string): Promise<void> {
  try {
    const s = await stat(dir);
    if (!s.isDirectory()) throw new InvalidArgumentError(dir, "is not a folder");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new NotFoundError(dir, "no such checkpoint folder");
    throw e;
  }
}

/** Reads and validates `config.json` of a checkpoint folder. */
export async function loadCheckpointConfig(dir: string): Promise<{ config: GPT2Config; hfConfig: Record<string, unknown> }> {
  await checkFolder(dir);
  const path = join(dir, CONFIG_FILE);
  const json = await readJsonFile(path);
  const config = fromHfConfig(json, path);
  return { config, hfConfig: json as Record<string, unknown> };
}

