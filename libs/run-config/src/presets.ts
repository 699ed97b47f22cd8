/**
 * The two demo configurations, as overrides of the defaults, and the merge that layers
 * overrides (preset, then a user's file, then flags).
 */
import { InvalidArgumentError } from "@rlhf/errors";

/** Names of the demo configurations. */
export const RUN_PRESET_NAMES = ["tiny", "default"] as const;
/** A demo configuration's name. */
export type RunPresetName = (typeof RUN_PRESET_NAMES)[number];

/** JSON object (plain, nested). */
export type JsonObject = { [key: string]: unknown };

/**
 * Sizes come from throughput measured on a 2-core machine (wasm backend, byte tokenizer,
 * batch 16, forward + backward + AdamW): 32-wide 2-layer ~8,600 tokens/s at T=128 and ~6,900
 * at T=256; 64-wide 4-layer ~1,900 and ~1,500; 128-wide 4-layer ~580 and ~520. Generation with
 * the key/value cache is several times faster than training, so the training stages (pretrain,
 * SFT, reward model, policy + critic updates) set the time. Built-in prompts are 98 bytes at the
 * median (171 at most) and gold answers 12 (98 at most).
 */
const PRESETS: Readonly<Record<RunPresetName, JsonObject>> = {
  // A smoke run (about 2 minutes on 2 cores): every stage runs. The 32-wide model learns the
  // answer format a little; PPO's visible gain is the reward for ending with EOS (the missing-EOS
  // penalty), measured 0.91 -> 0.53 of rollouts without EOS over 8 iterations. ~160k
  // pretraining tokens, 48 SFT steps, 96 ranked prompts, 8 PPO iterations of 32 episodes for
  // each of the two variants.
  tiny: {
    model: { preset: "tiny" },
    data: { builtin: { sft_prompts: 256, rm_prompts: 96, ppo_prompts: 64, eval_prompts: 32 } },
    pretrain: { steps: 80, batch_size: 16, sequence_length: 128, warmup_steps: 6, learning_rate: 3e-3 },
    sft: { epochs: 3, batch_size: 16, learning_rate: 2e-3 },
    rankings: { prompts: 96, max_new_tokens: 32 },
    reward_model: { epochs: 3, batch_size: 8, learning_rate: 1e-3 },
    ppo: {
      iterations: 8,
      prompts_per_iteration: 32,
      minibatch_size: 8,
      ppo_epochs: 2,
      max_new_tokens: 32,
      warmup_iterations: 1,
      policy_learning_rate: 2e-3,
      critic_learning_rate: 2e-3,
      ptx: { sequences: 8, sequence_length: 64 },
    },
    evaluation: { prompts: 32, max_new_tokens: 32, pretrain_validation_sequences: 16, samples_in_report: 4 },
    checkpoint: { every_iterations: 4, keep_last: 1 },
  },
  // The `rlhf demo` run (under 20 minutes on 2 cores): a 64-wide, 4-layer, 4-head byte model
  // (`small` narrowed). Measured (wasm, 2 cores, with compute's BatchMatMul wrapper): pretrain
  // 1m56s, SFT 2m14s, rankings 57s, reward model 4m15s, PPO (both variants, 15 iterations each)
  // 4m26s, evaluation 40s: 14.5 min (9.2 min on a faster day). ptx gamma 0.5: with 1, PPO-ptx's
  // pretraining loss went below SFT's by as much as plain PPO's went above it.
  default: {
    model: { preset: "small", n_embd: 64 },
    data: { builtin: { sft_prompts: 800, rm_prompts: 400, ppo_prompts: 480, eval_prompts: 200 } },
    pretrain: { steps: 150, batch_size: 16, sequence_length: 128, warmup_steps: 15, learning_rate: 2e-3 },
    sft: { epochs: 2, batch_size: 16, learning_rate: 1e-3 },
    rankings: { prompts: 400, max_new_tokens: 48 },
    reward_model: { epochs: 2, batch_size: 16, learning_rate: 5e-4 },
    ppo: {
      iterations: 15,
      prompts_per_iteration: 32,
      minibatch_size: 8,
      max_new_tokens: 48,
      warmup_iterations: 2,
      policy_learning_rate: 1e-3,
      critic_learning_rate: 1e-3,
      ptx: { gamma: 0.5, sequences: 8, sequence_length: 128 },
    },
    evaluation: { prompts: 200, max_new_tokens: 48, pretrain_validation_sequences: 64, samples_in_report: 8 },
    checkpoint: { every_iterations: 5 },
  },
};

function deepCopy<T>(v: T): T {
  return v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T);
}

/** The overrides of a demo configuration (a fresh copy); resolve them with `resolveRunConfig`. */
export function presetRunConfig(name: RunPresetName): JsonObject {
  if (!Object.prototype.hasOwnProperty.call(PRESETS, name)) {
    throw new InvalidArgumentError("preset", `unknown run preset ${JSON.stringify(name)}; known: ${RUN_PRESET_NAMES.join(", ")}`);
  }
  return deepCopy(PRESETS[name]);
}

function isPlainObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Layers JSON configs: later layers win key by key; nested objects merge, anything else
 * (arrays included) replaces. Inputs are not modified. A layer that is not an object is
 * returned as is by the merge so that validation reports it.
 */
export function mergeRunConfigs(...layers: unknown[]): unknown {
  let out: unknown = {};
  for (const layer of layers) {
    if (layer === undefined) continue;
    out = isPlainObject(out) && isPlainObject(layer) ? mergeTwo(out, layer) : deepCopy(layer);
  }
  return out;
}

function mergeTwo(a: JsonObject, b: JsonObject): JsonObject {
  const out: JsonObject = deepCopy(a);
  for (const [k, v] of Object.entries(b)) {
    if (v === undefined) continue;
    out[k] = isPlainObject(out[k]) && isPlainObject(v) ? mergeTwo(out[k] as JsonObject, v) : deepCopy(v);
  }
  return out;
}
