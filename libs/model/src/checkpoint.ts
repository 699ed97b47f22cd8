/**
 * Hugging Face compatible checkpoint folders: `config.json` (a GPT2Config) + `model.safetensors`
 * (GPT-2 tensor names). Loads the files the hub stores for `gpt2`: names with or without the
 * `transformer.` prefix, the `h.N.attn.bias` / `h.N.attn.masked_bias` buffers ignored, and an
 * `lm_head.weight` accepted only when equal to `wte.weight` (the head is tied).
 */
import { mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { DomainError, InvalidArgumentError, writeJsonAtomic } from "@rlhf/errors";
import type { HostTensor, NamedHostTensors } from "@rlhf/compute";
import { type GPT2Config, toHfConfig } from "./config";
import { GPT2 } from "./gpt2";
import { readSafetensorsFile, writeSafetensorsFile } from "./safetensors";

import { CONFIG_FILE, WEIGHTS_FILE, loadCheckpointConfig } from "./checkpoint-config";

export { CONFIG_FILE, WEIGHTS_FILE, loadCheckpointConfig } from "./checkpoint-config";

/** What `loadCheckpointTensors` returns. */
export interface CheckpointTensors {
  /** The model shape read from `config.json`. */
  config: GPT2Config;
  /** `config.json` as stored (including keys this library does not interpret). */
  hfConfig: Record<string, unknown>;
  /** Exactly the GPT-2 parameters, under their plain names (`wte.weight`, `h.0.ln_1.weight`, ...). */
  tensors: NamedHostTensors;
  /** The safetensors `__metadata__`. */
  metadata: Record<string, string>;
}

const PREFIX = "transformer.";
/** Non-parameter buffers that HF GPT-2 checkpoints may carry (the causal mask and its fill value). */
const IGNORED_BUFFER = /^h\.\d+\.attn\.(bias|masked_bias)$/;

function stripPrefix(name: string): string {
  return name.startsWith(PREFIX) ? name.slice(PREFIX.length) : name;
}

/**
 * Maps tensors as stored in a HF GPT-2 file to GPT-2 parameter names: drops the `transformer.`
 * prefix and the attention buffers, checks that `lm_head.weight` (if any) equals `wte.weight`
 * bit for bit and drops it. Names left unknown are kept (GPT2.fromHostTensors rejects them).
 */
export function normalizeGpt2Tensors(stored: NamedHostTensors, source = WEIGHTS_FILE): NamedHostTensors {
  const out: NamedHostTensors = new Map();
  let lmHead: HostTensor | undefined;
  for (const [storedName, t] of stored) {
    const name = stripPrefix(storedName);
    if (IGNORED_BUFFER.test(name)) continue;
    if (name === "lm_head.weight") {
      lmHead = t;
      continue;
    }
    if (out.has(name)) throw new InvalidArgumentError(`${source}[${storedName}]`, `duplicates tensor ${name}`);
    out.set(name, t);
  }
  if (lmHead !== undefined) {
    const wte = out.get("wte.weight");
    if (wte !== undefined && !sameBits(lmHead, wte)) {
      throw new InvalidArgumentError(
        `${source}[lm_head.weight]`,
        "differs from wte.weight, but this GPT-2 ties the output head to the token embedding",
      );
    }
  }
  return out;
}

function sameBits(a: HostTensor, b: HostTensor): boolean {
  if (a.dtype !== b.dtype || a.shape.length !== b.shape.length || a.shape.some((d, i) => d !== b.shape[i])) return false;
  const x = new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const y = new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength);
  return Buffer.compare(x, y) === 0;
}

/**
 * Reads a checkpoint folder into host tensors under plain GPT-2 names (see `normalizeGpt2Tensors`);
 * shapes are checked later by `GPT2.fromHostTensors`. Missing folder or file: NotFoundError
 * naming the path; malformed files: InvalidArgumentError.
 */
export async function loadCheckpointTensors(dir: string): Promise<CheckpointTensors> {
  const { config, hfConfig } = await loadCheckpointConfig(dir);
  const path = join(dir, WEIGHTS_FILE);
  const { tensors, metadata } = await readSafetensorsFile(path, {
    include: (name) => !IGNORED_BUFFER.test(stripPrefix(name)),
  });
  return { config, hfConfig, tensors: normalizeGpt2Tensors(tensors, path), metadata };
}

/**
 * Loads a checkpoint folder as a model. The weights arrays are the file's own (no second copy);
 * `trainable` (default true) as in `GPT2.fromHostTensors`.
 */
export async function loadCheckpoint(dir: string, options: { trainable?: boolean } = {}): Promise<GPT2> {
  const { config, tensors } = await loadCheckpointTensors(dir);
  return GPT2.fromHostTensors(config, tensors, { copy: false, trainable: options.trainable });
}

/**
 * Writes `config.json` and `model.safetensors` (F32, plain GPT-2 names, `__metadata__`
 * `{format: "pt"}`) into `dir`, creating it if needed. `extraConfig` keys are added to
 * `config.json` (e.g. `eos_token_id`, the resolved run config); an extra key that contradicts the
 * model's own (`n_embd`, ...) is an InvalidArgumentError. Each file is written under a temporary
 * name and renamed into place.
 */
export async function saveCheckpoint(model: GPT2, dir: string, extraConfig: Record<string, unknown> = {}): Promise<void> {
  const hf: Record<string, unknown> = toHfConfig(model.config);
  for (const [k, v] of Object.entries(extraConfig)) {
    if (k in hf && JSON.stringify(hf[k]) !== JSON.stringify(v)) {
      throw new InvalidArgumentError(`extraConfig.${k}`, `${JSON.stringify(v)} contradicts the model's ${JSON.stringify(hf[k])}`);
    }
  }
  const tensors = model.toHostTensors({ copy: false }); // only read while writing
  await mkdir(dir, { recursive: true });
  await writeSafetensorsFile(join(dir, WEIGHTS_FILE), tensors, { format: "pt" });
  await writeJsonAtomic(join(dir, CONFIG_FILE), { ...hf, ...extraConfig });
}

/**
 * Writes a checkpoint folder atomically: `write` fills a temporary sibling, which is then renamed
 * to `dir`. A non-empty `dir` is left alone: when `holdsSame(dir)` says it already holds this
 * checkpoint, nothing is written (bytes 0); otherwise ALREADY_EXISTS naming `field`.
 * Returns the bytes written (all files, recursively).
 */
export async function writeCheckpointFolder(
  dir: string,
  field: string,
  write: (tmp: string) => Promise<void>,
  holdsSame: (dir: string) => Promise<boolean>,
  describe: string,
): Promise<number> {
  let entries: string[] = [];
  try {
    entries = await readdir(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
  }
  if (entries.length > 0) {
    if (await holdsSame(dir).catch(() => false)) return 0;
    throw new DomainError("ALREADY_EXISTS", `"${dir}" is not empty and holds no checkpoint of ${describe}`, field);
  }
  await mkdir(dirname(dir), { recursive: true });
  const tmp = join(dirname(dir), `.${basename(dir)}.tmp-${process.pid}-${Date.now()}`);
  try {
    await write(tmp);
    await rm(dir, { recursive: true, force: true });
    await rename(tmp, dir);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  return folderBytes(dir);
}

/** Bytes of every file below `dir`. */
export async function folderBytes(dir: string): Promise<number> {
  let bytes = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    bytes += e.isDirectory() ? await folderBytes(p) : (await stat(p)).size;
  }
  return bytes;
}
