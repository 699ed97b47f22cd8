import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvalidArgumentError, NotFoundError } from "@rlhf/errors";
import { initBackend, type NamedHostTensors } from "@rlhf/compute";
import type { GPT2Config } from "./config";
import { GPT2, gpt2ParameterShapes } from "./gpt2";
import { loadCheckpoint, loadCheckpointTensors, saveCheckpoint } from "./checkpoint";
import { type HandTensor, f32Bytes, handWrittenSafetensors } from "./testing/hand-safetensors";
import { randomTestWeights, referenceTokenLogProbs } from "./testing/reference-gpt2";

const cfg: GPT2Config = { vocabSize: 61, nPositions: 24, nEmbd: 24, nLayer: 2, nHead: 3, layerNormEpsilon: 1e-5 };
const hfConfigJson = {
  activation_function: "gelu_new",
  architectures: ["GPT2LMHeadModel"],
  model_type: "gpt2",
  vocab_size: 61,
  n_positions: 24,
  n_ctx: 24,
  n_embd: 24,
  n_layer: 2,
  n_head: 3,
  layer_norm_epsilon: 1e-5,
  bos_token_id: 60,
  eos_token_id: 60,
};

let root = "";
before(async () => {
  await initBackend();
  root = await mkdtemp(join(tmpdir(), "gpt2-ckpt-"));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Writes a checkpoint folder the way the hub stores GPT-2, without using the library's writer. */
async function writeHubStyleFolder(
  dir: string,
  weights: NamedHostTensors,
  options: { extra?: HandTensor[]; prefix?: string; config?: Record<string, unknown> } = {},
): Promise<void> {
  const { prefix = "transformer.", extra = [], config = hfConfigJson } = options;
  const mask = new Float32Array(cfg.nPositions * cfg.nPositions);
  for (let t = 0; t < cfg.nPositions; t++) for (let s = 0; s <= t; s++) mask[t * cfg.nPositions + s] = 1;
  const entries: HandTensor[] = [
    { name: `${prefix}h.0.attn.bias`, dtype: "F32", shape: [1, 1, cfg.nPositions, cfg.nPositions], bytes: f32Bytes(mask) },
    { name: `${prefix}h.1.attn.masked_bias`, dtype: "F32", shape: [], bytes: f32Bytes([-1e4]) },
  ];
  // Reverse order: the reader must follow the offsets, not the order.
  for (const [name, t] of [...weights].reverse()) {
    entries.push({ name: `${prefix}${name}`, dtype: "F32", shape: t.shape, bytes: f32Bytes(t.data) });
  }
  entries.push(...extra);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "model.safetensors"), handWrittenSafetensors(entries, { metadata: { format: "pt" } }));
  await writeFile(join(dir, "config.json"), JSON.stringify(config));
}

const seqs = [
  [1, 5, 9, 14, 60, 2, 33],
  [7, 7],
  [0, 12, 40, 3, 3, 3, 58, 21, 9, 10, 11],
];
const packed = { tokens: Int32Array.from(seqs.flat()), lengths: seqs.map((s) => s.length) };

function assertMatchesReference(model: GPT2, weights: NamedHostTensors): void {
  for (const temperature of [1, 0.7]) {
    const got = model.tokenLogProbs(packed, temperature);
    seqs.forEach((s, i) => {
      const want = referenceTokenLogProbs(cfg, weights, s, temperature);
      assert.equal(got[i].length, want.length);
      want.forEach((v, t) => assert.ok(Math.abs(got[i][t] - v) <= 1e-5, `seq ${i} t ${t}: ${got[i][t]} vs ${v}`));
    });
  }
}

function rejectsWith(field: RegExp | string, message?: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(e)}`);
    if (typeof field === "string") assert.equal(e.field, field);
    else assert.match(e.field ?? "", field);
    if (message) assert.match(e.message, message);
    return true;
  };
}

test("loads a hub-style folder written by hand (transformer. prefix, attn buffers) and matches the reference", async () => {
  const weights = randomTestWeights(gpt2ParameterShapes(cfg), 21);
  const dir = join(root, "hub");
  await writeHubStyleFolder(dir, weights);
  const { config, hfConfig, tensors, metadata } = await loadCheckpointTensors(dir);
  assert.deepEqual(config, cfg);
  assert.equal(hfConfig.eos_token_id, 60);
  assert.deepEqual(metadata, { format: "pt" });
  assert.deepEqual([...tensors.keys()].sort(), [...weights.keys()].sort());
  const model = await loadCheckpoint(dir);
  try {
    assertMatchesReference(model, weights);
  } finally {
    model.dispose();
  }
});

test("lm_head.weight: ignored when equal to wte, rejected when different; plain names accepted", async () => {
  const weights = randomTestWeights(gpt2ParameterShapes(cfg), 22);
  const wte = weights.get("wte.weight");
  assert.ok(wte);
  const same = join(root, "lm-head-same");
  await writeHubStyleFolder(same, weights, {
    prefix: "",
    extra: [{ name: "lm_head.weight", dtype: "F32", shape: wte.shape, bytes: f32Bytes(wte.data) }],
  });
  const model = await loadCheckpoint(same);
  try {
    assertMatchesReference(model, weights);
  } finally {
    model.dispose();
  }

  const other = Float32Array.from(wte.data);
  other[5] += 0.25;
  const differs = join(root, "lm-head-differs");
  await writeHubStyleFolder(differs, weights, {
    extra: [{ name: "lm_head.weight", dtype: "F32", shape: wte.shape, bytes: f32Bytes(other) }],
  });
  await assert.rejects(loadCheckpoint(differs), rejectsWith(/lm_head\.weight\]$/, /differs from wte\.weight/));
});

test("save/load round trip: bit-identical tensors, equal log-probs, HF config.json", async () => {
  const model = GPT2.random(cfg, 1234);
  const dir = join(root, "round-trip", "nested");
  try {
    await saveCheckpoint(model, dir, { eos_token_id: 60, rlhf: { stage: "sft", step: 3 } });
    const config = JSON.parse(await readFile(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
    assert.equal(config.model_type, "gpt2");
    assert.deepEqual(config.architectures, ["GPT2LMHeadModel"]);
    assert.equal(config.activation_function, "gelu_new");
    assert.equal(config.n_embd, 24);
    assert.equal(config.n_positions, 24);
    assert.equal(config.eos_token_id, 60);
    assert.deepEqual(config.rlhf, { stage: "sft", step: 3 });

    const loaded = await loadCheckpoint(dir);
    try {
      const a = model.toHostTensors();
      const b = loaded.toHostTensors();
      assert.deepEqual([...b.keys()], [...a.keys()]);
      for (const [name, t] of a) {
        const u = b.get(name);
        assert.ok(u);
        assert.deepEqual(u.shape, t.shape);
        assert.ok(Buffer.from(u.data.buffer, u.data.byteOffset, u.data.byteLength).equals(Buffer.from(t.data.buffer)), name);
      }
      assert.deepEqual(loaded.tokenLogProbs(packed, 0.8), model.tokenLogProbs(packed, 0.8));
      assertMatchesReference(loaded, a);
    } finally {
      loaded.dispose();
    }
    await assert.rejects(saveCheckpoint(model, dir, { n_embd: 32 }), rejectsWith("extraConfig.n_embd", /contradicts/));
  } finally {
    model.dispose();
  }
});

test("missing folder or files: NotFound naming the path; malformed: InvalidArgument", async () => {
  const notFound = (path: string) => (e: unknown) => {
    assert.ok(e instanceof NotFoundError, `expected NotFoundError, got ${String(e)}`);
    assert.ok(e.message.includes(path), e.message);
    return true;
  };
  const nowhere = join(root, "does-not-exist");
  await assert.rejects(loadCheckpoint(nowhere), notFound(nowhere));

  const noWeights = join(root, "no-weights");
  await mkdir(noWeights);
  await writeFile(join(noWeights, "config.json"), JSON.stringify(hfConfigJson));
  await assert.rejects(loadCheckpoint(noWeights), notFound(join(noWeights, "model.safetensors")));

  const noConfig = join(root, "no-config");
  await mkdir(noConfig);
  await assert.rejects(loadCheckpoint(noConfig), notFound(join(noConfig, "config.json")));

  const weights = randomTestWeights(gpt2ParameterShapes(cfg), 23);
  const badJson = join(root, "bad-json");
  await writeHubStyleFolder(badJson, weights);
  await writeFile(join(badJson, "config.json"), "{ not json");
  await assert.rejects(loadCheckpoint(badJson), rejectsWith(join(badJson, "config.json"), /not valid JSON/));

  const relu = join(root, "relu");
  await writeHubStyleFolder(relu, weights, { config: { ...hfConfigJson, activation_function: "relu" } });
  await assert.rejects(loadCheckpoint(relu), rejectsWith(/activation_function$/, /not supported/));

  const wider = join(root, "wrong-shapes");
  await writeHubStyleFolder(wider, weights, { config: { ...hfConfigJson, n_embd: 30 } });
  await assert.rejects(loadCheckpoint(wider), rejectsWith("wte.weight", /expected shape \[61, 30\], got \[61, 24\]/));

  const truncated = join(root, "truncated");
  await writeHubStyleFolder(truncated, weights);
  const bytes = await readFile(join(truncated, "model.safetensors"));
  await writeFile(join(truncated, "model.safetensors"), bytes.subarray(0, bytes.length - 100));
  await assert.rejects(loadCheckpoint(truncated), rejectsWith(/model\.safetensors\[/, /past the data section/));

  const unknown = join(root, "unknown-tensor");
  await writeHubStyleFolder(unknown, weights, { extra: [{ name: "score.weight", dtype: "F32", shape: [1], bytes: f32Bytes([1]) }] });
  await assert.rejects(loadCheckpoint(unknown), rejectsWith("score.weight", /unexpected tensor/));
});
