import { test } from "node:test";
import assert from "node:assert/strict";
import { InvalidArgumentError } from "@rlhf/errors";
import { RunConfigError, parseRunConfig, resolveRunConfig, runConfigIssues } from "./resolve";
import { MAX_TRAINING_MEMORY_BYTES, RUN_CONFIG_SCHEMA, modelShape, rewardModelValidationPrompts, trainingMemoryBytes } from "./run-config";
import { checkLeaf, isDerived, leaves } from "./schema";
import { PATH_KEYS, resolveConfigPaths } from "./paths";

/** The error resolveRunConfig throws for `json` (fails the test when it does not throw). */
function errorOf(json: unknown): RunConfigError {
  try {
    resolveRunConfig(json);
  } catch (e) {
    assert.ok(e instanceof RunConfigError, `expected RunConfigError, got ${String(e)}`);
    return e;
  }
  assert.fail(`expected ${JSON.stringify(json)} to be rejected`);
}

/** The issues as "path: message" lines. */
function issuesOf(json: unknown): string[] {
  return runConfigIssues(json).map((i) => `${i.path}: ${i.message}`);
}

function isDeepFrozen(v: unknown): boolean {
  if (typeof v !== "object" || v === null) return true;
  return Object.isFrozen(v) && Object.values(v).every(isDeepFrozen);
}

test("defaults: every key filled in, values as documented", () => {
  const c = resolveRunConfig({});
  assert.equal(c.seed, 0);
  assert.equal(c.model.preset, "tiny");
  assert.deepEqual(modelShape(c), { vocab_size: 258, n_positions: 256, n_embd: 32, n_layer: 2, n_head: 2 });
  assert.equal(c.model.base_checkpoint, null);
  assert.equal(c.pretrain.enabled, true);
  assert.equal(c.data.builtin.seed, 0);
  assert.equal(c.data.builtin.labeler_agreement, 0.73);
  assert.deepEqual(c.data.builtin.families, ["nouns", "verbs", "adjectives", "names", "count", "reverse", "longest"]);
  assert.equal(c.ppo.kl.controller, "fixed");
  assert.equal(c.ppo.kl.beta, 0.02);
  assert.equal(c.ppo.kl.target, null);
  assert.equal(c.ppo.clip_range, 0.2);
  assert.equal(c.ppo.gae_gamma, 1);
  assert.equal(c.ppo.compare_without_ptx, true);
  assert.equal(c.rankings.k, 4);
  assert.equal(c.reward_model.epochs, 1);
  assert.equal(c.evaluation.temperature, 0);
  assert.equal(rewardModelValidationPrompts(c), 100);
  // Every leaf of the schema is present, and nothing else.
  const paths: string[] = [];
  const walk = (o: unknown, prefix: string): void => {
    if (typeof o === "object" && o !== null && !Array.isArray(o)) for (const [k, v] of Object.entries(o)) walk(v, prefix ? `${prefix}.${k}` : k);
    else {
      assert.notEqual(o, undefined, prefix);
      paths.push(prefix);
    }
  };
  walk(c, "");
  assert.deepEqual(paths, leaves(RUN_CONFIG_SCHEMA).map((l) => l.path));
});

test("defaults: round trip through JSON resolves to the same config, deep-frozen", () => {
  const c = resolveRunConfig({});
  assert.ok(isDeepFrozen(c));
  const again = resolveRunConfig(JSON.parse(JSON.stringify(c)));
  assert.deepEqual(again, c);
  assert.equal(JSON.stringify(again), JSON.stringify(c));
  assert.throws(() => {
    (c.ppo.kl as { beta: number }).beta = 1;
  }, TypeError);
});

test("resolving a resolved config is a no-op, with every optional key set too", () => {
  const full = resolveRunConfig({
    seed: 5,
    model: { preset: "small", n_embd: 64, tokenizer: "gpt2", base_checkpoint: "/ckpt/gpt2" },
    data: {
      source: "files",
      files: { sft: "/d/sft.jsonl", rankings: "/d/r.jsonl", prompts: "/d/p.jsonl", eval_prompts: "/d/e.jsonl", pretrain: "/d/text/" },
      builtin: { blocklist: ["darn", "heck"], families: ["count", "nouns"] },
    },
    rankings: { source: "file" },
    ppo: { kl: { controller: "adaptive", beta: 0.1, target: 6, horizon: 10000 } },
  });
  assert.equal(full.pretrain.enabled, false, "base_checkpoint turns pretraining off by default");
  assert.equal(full.data.builtin.seed, 5, "data.builtin.seed follows seed");
  assert.equal(full.model.n_embd, 64);
  assert.equal(full.model.n_layer, 4, "from the small preset");
  assert.equal(modelShape(full).vocab_size, 50257);
  assert.deepEqual(resolveRunConfig(JSON.parse(JSON.stringify(full))), full);
});

test("derived defaults yield to explicit values", () => {
  const c = resolveRunConfig({ seed: 3, data: { builtin: { seed: 9 } }, model: { base_checkpoint: "/w" }, pretrain: { enabled: true } });
  assert.equal(c.data.builtin.seed, 9);
  assert.equal(c.pretrain.enabled, true);
  assert.equal(resolveRunConfig({ model: { preset: "gpt2-124m", tokenizer: "gpt2" } }).model.n_positions, 1024);
});

test("the schema's own defaults pass its own checks", () => {
  for (const { path, leaf } of leaves(RUN_CONFIG_SCHEMA)) {
    assert.ok(leaf.description.length > 0 && !leaf.description.includes("\n"), `${path}: one-line description`);
    if (!isDerived(leaf.default)) assert.equal(checkLeaf(leaf, leaf.default), undefined, path);
  }
});

test("unknown keys are errors at any depth, with a suggestion", () => {
  assert.deepEqual(issuesOf({ sedd: 1 }).map((s) => s.split(";")[0]), ['sedd: unknown key']);
  const [deep] = issuesOf({ ppo: { kl: { betta: 0.1 } } });
  assert.match(deep, /^ppo\.kl\.betta: unknown key; did you mean "beta"\? known: controller, beta, target, horizon, max_mean_kl$/);
  assert.match(issuesOf({ data: { builtin: { colour: "red" } } })[0], /^data\.builtin\.colour: unknown key; known: seed, sft_prompts/);
  const e = errorOf({ evaluation: { prompts: 10, extra: true } });
  assert.equal(e.field, "evaluation.extra");
});

test("wrong types name the key path and what was expected", () => {
  assert.deepEqual(issuesOf({ seed: "1" }), ['seed: must be an integer 0..2147483647, got "1"']);
  assert.deepEqual(issuesOf({ ppo: { iterations: 1.5 } }), ["ppo.iterations: must be an integer 1..1000000, got 1.5"]);
  assert.deepEqual(issuesOf({ model: { preset: "huge" } }), ['model.preset: must be one of "tiny", "small", "gpt2-124m", got "huge"']);
  assert.deepEqual(issuesOf({ ppo: { compare_without_ptx: "yes" } }), ['ppo.compare_without_ptx: must be true or false, got "yes"']);
  assert.deepEqual(issuesOf({ ppo: { kl: { beta: null } } }), ["ppo.kl.beta: must not be null (number)"]);
  assert.deepEqual(issuesOf({ model: { base_checkpoint: "" } }), ['model.base_checkpoint: must be a non-empty string or null, got ""']);
  assert.deepEqual(issuesOf({ model: [] }), ["model: must be a JSON object, got an array"]);
  assert.deepEqual(issuesOf({ ppo: { kl: 0.02 } }), ["ppo.kl: must be a JSON object, got 0.02"]);
  assert.match(issuesOf({ data: { builtin: { families: ["nouns", "poems"] } } })[0], /^data\.builtin\.families: \[1\] must be one of values from "nouns", .*got "poems"$/);
  assert.deepEqual(issuesOf({ data: { builtin: { families: [] } } }), ["data.builtin.families: must not be empty"]);
  assert.deepEqual(issuesOf({ data: { builtin: { families: ["count", "count"] } } }), ['data.builtin.families: [1] repeats "count"']);
  assert.deepEqual(issuesOf({ data: { builtin: { blocklist: "darn" } } }), ['data.builtin.blocklist: must be a list of non-empty strings, got "darn"']);
  assert.deepEqual(issuesOf({ ppo: { clip_range: Number.NaN } }), ["ppo.clip_range: must be a finite number (0, 1), got NaN"]);
  assert.deepEqual(issuesOf({ ppo: { kl: { max_mean_kl: Infinity } } }), ["ppo.kl.max_mean_kl: must be a finite number (0, 1000000], got Infinity"]);
});

test("the document itself must be an object", () => {
  for (const bad of [null, [], "x", 3]) {
    const e = errorOf(bad);
    assert.equal(e.field, "config");
    assert.match(e.message, /^config: must be a JSON object, got /);
  }
  assert.throws(() => parseRunConfig("{"), (e: unknown) => e instanceof RunConfigError && /^config: is not valid JSON/.test(e.message));
  assert.equal(parseRunConfig('{"seed": 4}').seed, 4);
});

test("out-of-range values: the message names the key, the limit and the value", () => {
  const e = errorOf({ ppo: { kl: { controller: "adaptive", target: -1, horizon: 10000 } } });
  assert.equal(e.message, "ppo.kl.target: must be > 0, got -1");
  assert.equal(e.field, "ppo.kl.target");
  assert.deepEqual(issuesOf({ ppo: { missing_eos_penalty: 0.5 } }), ["ppo.missing_eos_penalty: must be <= 0, got 0.5"]);
  assert.deepEqual(issuesOf({ data: { builtin: { labeler_agreement: 1 } } }), ["data.builtin.labeler_agreement: must be < 1, got 1"]);
  assert.deepEqual(issuesOf({ data: { builtin: { labeler_calibration: "gold" } } }), ['data.builtin.labeler_calibration: must be one of "ranked_samples", "simulated_responses", got "gold"']);
  assert.deepEqual(issuesOf({ ppo: { clip_range: 0 } }), ["ppo.clip_range: must be > 0, got 0"]);
  assert.deepEqual(issuesOf({ rankings: { k: 1 } }), ["rankings.k: must be >= 2, got 1"]);
  assert.deepEqual(issuesOf({ rankings: { k: 17 } }), ["rankings.k: must be <= 16, got 17"]);
  assert.deepEqual(issuesOf({ ppo: { kl: { controller: "adaptive", target: 6, horizon: 0 } } }), ["ppo.kl.horizon: must be >= 1, got 0"]);
  // Boundaries that are allowed.
  resolveRunConfig({ ppo: { missing_eos_penalty: 0, kl: { beta: 0 }, entropy_coef: 1 }, rankings: { k: 16 }, evaluation: { temperature: 0 } });
});

test("every error is collected; one InvalidArgumentError lists them all", () => {
  const e = errorOf({ seed: -1, model: { presett: "tiny" }, ppo: { kl: { target: -1 }, clip_range: 2 }, sft: { epochs: 0 } });
  assert.ok(e instanceof InvalidArgumentError);
  assert.equal(e.code, "INVALID_ARGUMENT");
  assert.deepEqual(
    e.issues.map((i) => i.path),
    ["seed", "model.presett", "sft.epochs", "ppo.clip_range", "ppo.kl.target"],
  );
  assert.equal(e.field, "seed");
  assert.ok(e.message.startsWith("seed: must be >= 0, got -1; model.presett: unknown key"), e.message);
  for (const i of e.issues) assert.ok(e.message.includes(`${i.path}: ${i.message}`) || i === e.issues[0]);
  assert.ok(e.message.includes("ppo.kl.target: must be > 0, got -1"));
});

test("cross-field rules: errors name the key", () => {
  const cases: [unknown, string][] = [
    [{ model: { n_embd: 33 } }, "model.n_embd: must be a multiple of model.n_head (2), got 33"],
    [{ pretrain: { sequence_length: 512 } }, "pretrain.sequence_length: must be <= model.n_positions (256), got 512"],
    [{ model: { n_positions: 200 }, data: { max_prompt_tokens: 100 }, pretrain: { sequence_length: 201 } }, "pretrain.sequence_length: must be <= model.n_positions (200), got 201"],
    [{ ppo: { max_new_tokens: 100 } }, "ppo.max_new_tokens: with data.max_prompt_tokens (176) must fit model.n_positions (256): at most 80, got 100"],
    [{ ppo: { minibatch_size: 128 } }, "ppo.minibatch_size: must be <= ppo.prompts_per_iteration (64), got 128"],
    [{ ppo: { minibatch_size: 24 } }, "ppo.minibatch_size: must divide ppo.prompts_per_iteration (64), got 24"],
    [{ ppo: { kl: { controller: "adaptive", target: 6, horizon: 10000, beta: 0 } } }, 'ppo.kl.beta: must be > 0 when ppo.kl.controller is "adaptive", got 0'],
    [{ rankings: { source: "file" } }, 'data.files.rankings: is required when rankings.source is "file"'],
    [{ rankings: { prompts: 3000 } }, "rankings.prompts: must be <= data.builtin.rm_prompts (2000), got 3000"],
    [{ ppo: { prompts_per_iteration: 128, minibatch_size: 16 }, data: { builtin: { ppo_prompts: 100 } } }, "ppo.prompts_per_iteration: must be <= data.builtin.ppo_prompts (100), got 128"],
    [{ evaluation: { prompts: 600 } }, "evaluation.prompts: must be <= data.builtin.eval_prompts (500), got 600"],
    [{ evaluation: { prompts: 4 } }, "evaluation.samples_in_report: must be <= evaluation.prompts (4), got 8"],
    [{ rankings: { prompts: 4 } }, "reward_model.validation_fraction: leaves 0 of rankings.prompts (4) held out; needs at least 1 held out and 1 for training"],
    [{ rankings: { prompts: 2 }, reward_model: { validation_fraction: 0.9 } }, "reward_model.validation_fraction: leaves 2 of rankings.prompts (2) held out; needs at least 1 held out and 1 for training"],
    [{ pretrain: { steps: 50 } }, "pretrain.warmup_steps: must be < pretrain.steps (50), got 50"],
    [{ ppo: { iterations: 5, warmup_iterations: 5 } }, "ppo.warmup_iterations: must be < ppo.iterations (5), got 5"],
    [{ ppo: { ptx: { sequence_length: 300 } } }, "ppo.ptx.sequence_length: must be <= model.n_positions (256), got 300"],
  ];
  for (const [json, want] of cases) assert.deepEqual(issuesOf(json), [want], JSON.stringify(json));
});

test("cross-field rules: the adaptive controller needs target and horizon, fixed does not", () => {
  assert.deepEqual(issuesOf({ ppo: { kl: { controller: "adaptive" } } }), [
    'ppo.kl.target: is required when ppo.kl.controller is "adaptive"',
    'ppo.kl.horizon: is required when ppo.kl.controller is "adaptive"',
  ]);
  assert.deepEqual(issuesOf({ ppo: { kl: { controller: "fixed", target: 6 } } }), []);
});

test("cross-field rules: file data needs its paths and rankings from a file", () => {
  assert.deepEqual(issuesOf({ data: { source: "files" } }), [
    'data.files.sft: is required when data.source is "files"',
    'data.files.prompts: is required when data.source is "files"',
    'data.files.eval_prompts: is required when data.source is "files"',
    'rankings.source: must be "file" when data.source is "files": the simulated labelers need the gold answers of the built-in tasks',
  ]);
  // Built-in sizes do not limit file data; pretraining text is optional (null: the Brown corpus).
  const files = { sft: "/a", rankings: "/b", prompts: "/c", eval_prompts: "/d" };
  const c = resolveRunConfig({ data: { source: "files", files, builtin: { eval_prompts: 1 } }, rankings: { source: "file" } });
  assert.equal(c.data.files.pretrain, null);
  assert.equal(resolveRunConfig({ data: { files: { pretrain: "/t.txt" } } }).data.files.pretrain, "/t.txt", "pretraining text goes with built-in tasks too");
  // Built-in instruction data with a rankings file is a valid combination.
  assert.equal(resolveRunConfig({ rankings: { source: "file" }, data: { files: { rankings: "/r.jsonl" } } }).rankings.source, "file");
});

test("cross-field rules: a file nothing would read is an error, not silently ignored", () => {
  assert.deepEqual(issuesOf({ data: { files: { sft: "/s.jsonl", eval_prompts: "/e.jsonl" } } }), [
    'data.files.sft: is only read when data.source is "files" (it is "builtin"): set data.source to "files", or remove this key',
    'data.files.eval_prompts: is only read when data.source is "files" (it is "builtin"): set data.source to "files", or remove this key',
  ]);
  assert.deepEqual(issuesOf({ data: { files: { rankings: "/r.jsonl" } } }), [
    'data.files.rankings: is only read when rankings.source is "file" (it is "simulated"): set rankings.source to "file", or remove this key',
  ]);
});

test("rankings from the labeling service: built-in data, min_ranked within the prompts, its keys only with that source", () => {
  const c = resolveRunConfig({ rankings: { source: "labeling", prompts: 100, labeling: { min_ranked: 50, overlap: 0 } } });
  assert.equal(c.rankings.source, "labeling");
  assert.deepEqual(c.rankings.labeling, { min_ranked: 50, overlap: 0 });
  assert.deepEqual(resolveRunConfig({ rankings: { source: "labeling" } }).rankings.labeling, { min_ranked: null, overlap: null });
  assert.deepEqual(issuesOf({ rankings: { source: "labeling", prompts: 100, labeling: { min_ranked: 101 } } }), ["rankings.labeling.min_ranked: must be <= rankings.prompts (100), got 101"]);
  assert.deepEqual(issuesOf({ rankings: { source: "labeling", prompts: 100, labeling: { min_ranked: 2 } }, reward_model: { validation_fraction: 0.9 } }), [
    "rankings.labeling.min_ranked: leaves 2 of 2 ranked prompts held out (reward_model.validation_fraction 0.9); needs at least 1 for training",
  ]);
  assert.deepEqual(issuesOf({ rankings: { source: "labeling", labeling: { overlap: 1.5 } } }), ["rankings.labeling.overlap: must be <= 1, got 1.5"]);
  assert.deepEqual(issuesOf({ rankings: { labeling: { overlap: 0.1 } } }), [
    'rankings.labeling: is only read when rankings.source is "labeling" (it is "simulated"): set rankings.source to "labeling", or remove these keys',
  ]);
  assert.deepEqual(issuesOf({ rankings: { source: "labeling" }, data: { files: { rankings: "/r.jsonl" } } }), [
    'data.files.rankings: is only read when rankings.source is "file" (it is "labeling"): set rankings.source to "file", or remove this key',
  ]);
  const files = { sft: "/a", prompts: "/c", eval_prompts: "/d" };
  assert.deepEqual(issuesOf({ data: { source: "files", files }, rankings: { source: "labeling" } }), [
    'rankings.source: must be "file" when data.source is "files": the labeling stage samples for the built-in reward-model prompts (rank your own prompts with rlhf label import and export)',
  ]);
});

test("paths must be absolute; resolveConfigPaths makes a config file's relative paths absolute from its folder", () => {
  assert.deepEqual(issuesOf({ model: { base_checkpoint: "ckpt/gpt2" } }), [
    'model.base_checkpoint: must be an absolute path, got "ckpt/gpt2" (rlhf run makes a config file\'s relative paths absolute, from the file\'s folder)',
  ]);
  assert.deepEqual(PATH_KEYS, ["model.base_checkpoint", "data.files.sft", "data.files.rankings", "data.files.prompts", "data.files.eval_prompts", "data.files.pretrain"]);
  const json = { preset: "tiny", model: { base_checkpoint: "../gpt2" }, data: { source: "files", files: { sft: "sft.jsonl", prompts: "/abs/p.jsonl", eval_prompts: null, pretrain: "" } }, seed: 1 };
  const out = resolveConfigPaths(json, "/home/me/configs") as typeof json;
  assert.equal(out.model.base_checkpoint, "/home/me/gpt2");
  assert.equal(out.data.files.sft, "/home/me/configs/sft.jsonl");
  assert.equal(out.data.files.prompts, "/abs/p.jsonl", "absolute paths are kept");
  assert.equal(out.data.files.eval_prompts, null);
  assert.equal(out.data.files.pretrain, "", "bad values are left for validation to report");
  assert.equal(out.seed, 1);
  assert.equal(json.data.files.sft, "sft.jsonl", "the input is not modified");
  assert.deepEqual(resolveConfigPaths([1], "/x"), [1], "a document that is not an object is left for validation to report");
});

test("a rule is skipped when a key it reads is invalid (no follow-on errors)", () => {
  assert.deepEqual(issuesOf({ model: { n_head: "4" } }), ['model.n_head: must be an integer 1..256, got "4"']);
  assert.deepEqual(issuesOf({ model: { preset: "huge" }, pretrain: { sequence_length: 100000 } }), [
    'model.preset: must be one of "tiny", "small", "gpt2-124m", got "huge"',
    "pretrain.sequence_length: must be <= 65536, got 100000",
  ]);
  assert.deepEqual(issuesOf({ ppo: "fast" }).length, 1);
});

test("a model that could never be trained is refused up front with the estimate and the limit", () => {
  const issues = issuesOf({ model: { n_embd: 16384, n_layer: 256, n_head: 16 } });
  assert.equal(issues.length, 1, issues.join("\n"));
  assert.match(issues[0], /^model\.n_layer: this model \(n_embd 16384, n_layer 256, 8\.\d\de\+11 parameters\) needs an estimated \d+ GiB to train .* more than the limit of 32 GiB: make model\.n_embd or model\.n_layer/);
  // The presets and GPT-2 124M fit.
  for (const preset of ["tiny", "small", "gpt2-124m"]) assert.deepEqual(issuesOf({ model: { preset } }), [], preset);
  const gpt2 = resolveRunConfig({ model: { preset: "gpt2-124m", tokenizer: "gpt2" } });
  const m = trainingMemoryBytes(gpt2);
  assert.ok(Math.abs(m.parameters - 124_439_808) / 124_439_808 < 0.01, `GPT-2 small has 124.4M parameters, estimated ${m.parameters}`);
  assert.ok(m.bytes < MAX_TRAINING_MEMORY_BYTES);
});
