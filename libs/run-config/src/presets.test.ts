import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgumentError } from "@rlhf/errors";
import { RUN_PRESET_NAMES, type RunPresetName, mergeRunConfigs, presetRunConfig } from "./presets";
import { resolveRunConfig } from "./resolve";
import { SHORT_FAMILY_NAMES, modelShape } from "./run-config";

test("both demo presets resolve, and re-resolving them is a no-op", () => {
  for (const name of RUN_PRESET_NAMES) {
    const c = resolveRunConfig(presetRunConfig(name));
    assert.deepEqual(resolveRunConfig(JSON.parse(JSON.stringify(c))), c, name);
  }
});

test("tiny: the tiny model with a few steps of every stage, on the demo's data", () => {
  const c = resolveRunConfig(presetRunConfig("tiny"));
  assert.deepEqual(modelShape(c), { vocab_size: 2048, n_positions: 128, n_embd: 32, n_layer: 2, n_head: 2 });
  assert.equal(c.model.tokenizer, "bpe");
  assert.deepEqual(c.data.builtin.families, resolveRunConfig(presetRunConfig("default")).data.builtin.families);
  assert.equal(c.pretrain.steps, 80);
  assert.equal(c.ppo.iterations, 8);
  assert.equal(c.ppo.prompts_per_iteration, 32);
  assert.ok(c.ppo.warmup_iterations < c.ppo.iterations);
  assert.equal(c.ppo.compare_without_ptx, true, "the smoke run exercises both PPO variants");
  assert.equal(c.evaluation.prompts, 32);
});

test("default: a 64-wide 4-layer BPE model on the short families, with flawed demonstrations", () => {
  const c = resolveRunConfig(presetRunConfig("default"));
  assert.deepEqual(modelShape(c), { vocab_size: 2048, n_positions: 128, n_embd: 64, n_layer: 4, n_head: 4 });
  assert.equal(c.model.tokenizer, "bpe");
  assert.ok(c.data.builtin.families.every((f) => (SHORT_FAMILY_NAMES as readonly string[]).includes(f)), "short families only");
  assert.ok(c.data.builtin.demonstrations.flaw_share > 0, "some demonstrations are flawed");
  assert.equal(c.ppo.kl.controller, "adaptive");
  assert.ok(c.ppo.kl.target! < c.ppo.kl.max_mean_kl, "the controller aims under the bound");
  assert.ok(c.ppo.iterations * c.ppo.prompts_per_iteration <= c.data.builtin.ppo_prompts, "no PPO prompt is repeated");
});

test("presetRunConfig returns a fresh copy and rejects unknown names", () => {
  const a = presetRunConfig("tiny") as { ppo: { iterations: number } };
  a.ppo.iterations = 999;
  assert.equal((presetRunConfig("tiny") as { ppo: { iterations: number } }).ppo.iterations, 8);
  assert.throws(() => presetRunConfig("huge" as RunPresetName), (e: unknown) => e instanceof InvalidArgumentError && e.field === "preset");
});

test("mergeRunConfigs: later layers win key by key, arrays replace, inputs untouched", () => {
  const preset = presetRunConfig("tiny");
  const user = { ppo: { iterations: 5, kl: { beta: 0.05 } }, data: { builtin: { families: ["count"] } } };
  const merged = mergeRunConfigs(preset, user, { seed: 2 }, undefined);
  const c = resolveRunConfig(merged);
  assert.equal(c.ppo.iterations, 5);
  assert.equal(c.ppo.prompts_per_iteration, 32, "kept from the preset");
  assert.equal(c.ppo.kl.beta, 0.05);
  assert.deepEqual(c.data.builtin.families, ["count"]);
  assert.equal(c.data.builtin.sft_prompts, 256);
  assert.equal(c.seed, 2);
  assert.equal((preset as { ppo: { iterations: number } }).ppo.iterations, 8);
  // A layer that is not an object is passed through so that validation reports it.
  assert.throws(() => resolveRunConfig(mergeRunConfigs({ seed: 1 }, "oops")), /config: must be a JSON object/);
  assert.throws(() => resolveRunConfig(mergeRunConfigs({ ppo: { iterations: 2 } }, { ppo: 7 })), /ppo: must be a JSON object, got 7/);
});
