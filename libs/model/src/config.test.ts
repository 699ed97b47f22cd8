import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgumentError } from "@rlhf/errors";
import { GPT2_PRESETS, MAX_PARAMETERS, type GPT2Config, configParameterCount, fromHfConfig, presetConfig, toHfConfig, validateConfig } from "./config";
import { gpt2ParameterShapes } from "./gpt2";

const ok: GPT2Config = { vocabSize: 61, nPositions: 24, nEmbd: 24, nLayer: 2, nHead: 3, layerNormEpsilon: 1e-5 };

function rejects(fn: () => unknown, field: string, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(e)}`);
    assert.equal(e.field, field);
    if (message) assert.match(e.message, message);
    return true;
  });
}

test("presets are valid and gpt2-124m is GPT-2 small", () => {
  for (const c of Object.values(GPT2_PRESETS)) validateConfig(c);
  assert.deepEqual(GPT2_PRESETS["gpt2-124m"], {
    vocabSize: 50257,
    nPositions: 1024,
    nEmbd: 768,
    nLayer: 12,
    nHead: 12,
    layerNormEpsilon: 1e-5,
  });
  assert.deepEqual(presetConfig("tiny", { vocabSize: 300 }), { ...GPT2_PRESETS.tiny, vocabSize: 300 });
  rejects(() => presetConfig("huge"), "preset", /unknown preset "huge"/);
  rejects(() => presetConfig("tiny", { nHead: 3 }), "nEmbd", /multiple of nHead \(3\)/);
});

test("validateConfig names the field and its limit", () => {
  assert.equal(validateConfig(ok), ok);
  rejects(() => validateConfig({ ...ok, vocabSize: 0 }), "vocabSize", /1\.\.1048576, got 0/);
  rejects(() => validateConfig({ ...ok, vocabSize: 1_048_577 }), "vocabSize", /1\.\.1048576/);
  rejects(() => validateConfig({ ...ok, vocabSize: 2.5 }), "vocabSize", /integer/);
  rejects(() => validateConfig({ ...ok, nPositions: 65_537 }), "nPositions", /1\.\.65536/);
  rejects(() => validateConfig({ ...ok, nEmbd: 16_386, nHead: 2 }), "nEmbd", /1\.\.16384/);
  rejects(() => validateConfig({ ...ok, nEmbd: 25 }), "nEmbd", /multiple of nHead \(3\), got 25/);
  rejects(() => validateConfig({ ...ok, nLayer: 257 }), "nLayer", /1\.\.256/);
  rejects(() => validateConfig({ ...ok, nLayer: 0 }), "nLayer", /1\.\.256/);
  rejects(() => validateConfig({ ...ok, nHead: 0 }), "nHead", /1\.\.256/);
  rejects(() => validateConfig({ ...ok, layerNormEpsilon: 0 }), "layerNormEpsilon", /> 0/);
  rejects(() => validateConfig({ ...ok, layerNormEpsilon: Number.NaN }), "layerNormEpsilon", /> 0/);
});

test("a shape whose fields are each within limits but whose weights are not is refused with its size", () => {
  // The formula counts exactly the tensors the model has.
  const fromShapes = (c: GPT2Config) => [...gpt2ParameterShapes(c).values()].reduce((n, s) => n + s.reduce((a, d) => a * d, 1), 0);
  for (const c of [ok, ...Object.values(GPT2_PRESETS)]) assert.equal(configParameterCount(c), fromShapes(c));
  const huge = { ...ok, nEmbd: 16_384, nHead: 16, nLayer: 256 };
  rejects(() => validateConfig(huge), "nLayer", /has 8\.\d+e\+11 parameters \(\d+ GiB of float32 weights\), more than the limit of 2\^31 \(8 GiB\)/);
  // GPT-2 XL's shape (1.56e9 parameters) is within the limit; a little wider is not.
  const xl = { vocabSize: 50257, nPositions: 1024, nEmbd: 1600, nLayer: 48, nHead: 25, layerNormEpsilon: 1e-5 };
  assert.ok(configParameterCount(xl) < MAX_PARAMETERS);
  assert.equal(validateConfig(xl), xl);
  rejects(() => validateConfig({ ...xl, nEmbd: 2000 }), "nLayer", /more than the limit of 2\^31/);
});

test("HF config: written with GPT-2's keys and read back", () => {
  const hf = toHfConfig(GPT2_PRESETS["gpt2-124m"]);
  assert.equal(hf.model_type, "gpt2");
  assert.deepEqual(hf.architectures, ["GPT2LMHeadModel"]);
  assert.equal(hf.activation_function, "gelu_new");
  assert.equal(hf.vocab_size, 50257);
  assert.equal(hf.n_positions, 1024);
  assert.equal(hf.n_embd, 768);
  assert.equal(hf.n_layer, 12);
  assert.equal(hf.n_head, 12);
  assert.equal(hf.layer_norm_epsilon, 1e-5);
  assert.deepEqual(fromHfConfig(JSON.parse(JSON.stringify(toHfConfig(ok)))), ok);
});

test("HF config: the hub's gpt2 config.json reads as gpt2-124m", () => {
  // openai-community/gpt2 config.json (abridged to the model's keys and a few others).
  const hub = {
    activation_function: "gelu_new",
    architectures: ["GPT2LMHeadModel"],
    attn_pdrop: 0.1,
    bos_token_id: 50256,
    embd_pdrop: 0.1,
    eos_token_id: 50256,
    initializer_range: 0.02,
    layer_norm_epsilon: 1e-5,
    model_type: "gpt2",
    n_ctx: 1024,
    n_embd: 768,
    n_head: 12,
    n_layer: 12,
    n_positions: 1024,
    resid_pdrop: 0.1,
    summary_activation: null,
    task_specific_params: { "text-generation": { do_sample: true, max_length: 50 } },
    vocab_size: 50257,
  };
  assert.deepEqual(fromHfConfig(hub), GPT2_PRESETS["gpt2-124m"]);
});

test("HF config: n_ctx when n_positions is missing; HF defaults", () => {
  const c = fromHfConfig({ vocab_size: 61, n_ctx: 24, n_embd: 24, n_layer: 2, n_head: 3 });
  assert.deepEqual(c, ok); // layer_norm_epsilon defaults to 1e-5, activation to gelu_new
  assert.equal(fromHfConfig({ ...toHfConfig(ok), activation_function: "gelu_pytorch_tanh" }).nEmbd, 24);
});

test("HF config: rejects what this GPT-2 would compute differently", () => {
  const base = toHfConfig(ok);
  rejects(() => fromHfConfig({ ...base, activation_function: "relu" }), "config.json.activation_function", /"relu" is not supported.*gelu_new/);
  rejects(() => fromHfConfig({ ...base, activation_function: "gelu" }), "config.json.activation_function");
  rejects(() => fromHfConfig({ ...base, model_type: "llama" }), "config.json.model_type", /must be "gpt2"/);
  rejects(() => fromHfConfig({ ...base, n_inner: 100 }), "config.json.n_inner");
  rejects(() => fromHfConfig({ ...base, tie_word_embeddings: false }), "config.json.tie_word_embeddings");
  rejects(() => fromHfConfig({ ...base, scale_attn_by_inverse_layer_idx: true }), "config.json.scale_attn_by_inverse_layer_idx");
  rejects(() => fromHfConfig({ ...base, vocab_size: "61" }), "config.json.vocab_size", /integer/);
  rejects(() => fromHfConfig({ ...base, n_positions: undefined, n_ctx: undefined }), "config.json.n_positions", /missing/);
  rejects(() => fromHfConfig({ ...base, n_head: 5 }, "ckpt/config.json"), "ckpt/config.json.n_embd", /multiple of/);
  rejects(() => fromHfConfig({ ...base, n_layer: 0 }), "config.json.n_layer", /1\.\.256/);
  rejects(() => fromHfConfig([1, 2]), "config.json", /JSON object/);
});
