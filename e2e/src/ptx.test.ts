// Issue 5's acceptance test across real processes: `rlhf serve policy`, `rlhf serve reward-model`
// and `rlhf serve pretrain-mix`. The reward model loads the policy's weights, the critic is
// initialised from the reward model's streamed weights, pretrain-mix pulls the policy at version
// 0 and computes gamma-weighted pretraining gradients, which are piped chunk by chunk into the
// policy's PpoUpdate. The result must equal one single-process step on the summed objective
// (policy loss + value loss - gamma * pretraining log-likelihood) computed here from scratch.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { common, policy as policyPb, pretrainMix, rewardModel } from "@rlhf/proto";
import { createClient, checkHealth, waitForServing } from "@rlhf/grpc-kit";
import { initBackend, type BackendName, type NamedHostTensors } from "@rlhf/compute";
import { receiveTensorSet, modelConfigToProto, modelConfigFromProto } from "@rlhf/tensor-transport";
import { GPT2, ScalarHeadModel, Trainer, lmLoss, type GPT2Config } from "@rlhf/model";
import { ppoPolicyLoss, ppoValueLoss } from "@rlhf/rl";
import { BACKEND, RLHF, freePort, start, exitWithin, type Proc } from "./helpers";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

// Byte-level vocabulary (EOS 256, PAD 257) and a short context: fast on any backend.
const CONFIG: GPT2Config = { vocabSize: 260, nPositions: 32, nEmbd: 16, nLayer: 2, nHead: 2, layerNormEpsilon: 1e-5 };
const procs: Proc[] = [];
after(async () => {
  for (const p of procs) p.child.kill("SIGTERM");
  for (const p of procs) await exitWithin(p, testDeadlineMs(10_000));
});

async function serve(name: string, env: Record<string, string>): Promise<string> {
  const port = await freePort();
  // One backend everywhere (this process too): this test compares float32 results across processes.
  const p = start([RLHF, "serve", name, "--port", String(port)], { RLHF_BACKEND: BACKEND, LOG_LEVEL: "warn", ...env });
  procs.push(p);
  return `127.0.0.1:${port}`;
}

/** Resolves once the server answers a health check, whatever its status. */
async function answering(address: string, timeoutMs = testDeadlineMs(60_000)): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      await checkHealth(address, "", 1000);
      return;
    } catch (e) {
      if (Date.now() > until) throw e;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

test("PpoUpdate with pretrain-mix's gradients equals a single-process step on the summed objective", { timeout: testDeadlineMs(180_000) }, async () => {
  await initBackend({ backend: BACKEND as BackendName });
  const policyAddr = await serve("policy", {});
  const rmAddr = await serve("reward-model", { POLICY_ADDR: policyAddr });
  const mixAddr = await serve("pretrain-mix", { POLICY_ADDR: policyAddr, TOKENIZER: "byte" });
  const policy = createClient(policyPb.PolicyServiceClient, policyAddr, { deadlineMs: testDeadlineMs(120_000) });
  const rm = createClient(rewardModel.RewardModelServiceClient, rmAddr, { deadlineMs: testDeadlineMs(120_000) });
  const mix = createClient(pretrainMix.PretrainMixServiceClient, mixAddr, { deadlineMs: testDeadlineMs(120_000) });
  try {
    // pretrain-mix is SERVING once its corpus is tokenised; the model services answer health
    // (NOT_SERVING until a model is loaded) as soon as they listen.
    await Promise.all([answering(policyAddr), answering(rmAddr), waitForServing(mixAddr, testDeadlineMs(120_000))]);
    await policy.unary("loadCheckpoint", { source: { $case: "randomInit", randomInit: { config: modelConfigToProto(CONFIG), seed: 21 } } });

    // Reward model from the policy's weights (trunk copied, zero head), then the critic from it.
    const fromPolicy = await rm.unary("loadCheckpoint", { source: { $case: "policyWeights", policyWeights: { modelId: "policy", version: 0, source: "" } } });
    assert.equal(fromPolicy.weights?.version, 0);
    assert.match(fromPolicy.weights?.source ?? "", /^policy@127\.0\.0\.1:\d+:0$/);
    const critic = await policy.unary("initCritic", { source: { $case: "rewardModel", rewardModel: { address: rmAddr, version: 0 } } });
    assert.equal(critic.criticWeights?.source, `reward-model@${rmAddr}:0`);

    const weights = async (model: policyPb.ModelKind) => {
      const set = await receiveTensorSet(policy.serverStream("streamWeights", { model, dtype: common.Dtype.DTYPE_FLOAT32 }), (m: policyPb.StreamWeightsResponse) => m.chunk);
      return { config: modelConfigFromProto(set.modelConfig), tensors: set.tensors };
    };
    const p0 = await weights(policyPb.ModelKind.MODEL_KIND_POLICY);
    const c0 = await weights(policyPb.ModelKind.MODEL_KIND_CRITIC);
    // The critic starts as the reward model: its trunk is the policy's, its head the zero head.
    assert.deepEqual(c0.tensors.get("h.1.mlp.c_proj.weight")?.data, p0.tensors.get("h.1.mlp.c_proj.weight")?.data);
    assert.ok(c0.tensors.get("score.weight")?.data.every((x) => x === 0));

    // A rollout minibatch: sampled responses, their log-probs and values from Evaluate.
    const prompts = { tokens: [72, 105, 32, 116, 104, 101], lengths: [3, 3], promptLengths: [] };
    const gen: policyPb.GenerateResponse[] = [];
    for await (const m of policy.serverStream("generate", { prompts, samplesPerPrompt: 2, temperature: 0, topK: 0, topP: 0, maxNewTokens: 8, seed: 5, ignoreEos: false })) gen.push(m as policyPb.GenerateResponse);
    const seqs = gen[0].sequences as common.TokenBatch;
    assert.equal(gen.length, 1);
    const ev = await policy.unary("evaluate", { sequences: seqs, temperature: 0, skipValues: false });
    const n = ev.logprobs.length;
    const advantages = Array.from({ length: n }, (_, i) => Math.sin(i + 1));
    const returns = ev.values.map((v, i) => v + 0.3 * Math.cos(i));
    const adam = (lr: number, maxGradNorm: number): common.OptimizerConfig => ({ learningRate: lr, beta1: 0.9, beta2: 0.95, epsilon: 1e-6, weightDecay: 0.01, maxGradNorm });
    const minibatch: policyPb.PpoMinibatch = {
      sequences: seqs,
      oldLogprobs: ev.logprobs,
      oldValues: ev.values,
      advantages,
      returns,
      hyperparameters: { clipRange: 0.2, valueClipRange: 0.2, valueLossCoef: 0.5, entropyCoef: 0, temperature: 0, policyOptimizer: adam(3e-3, 1), criticOptimizer: adam(3e-3, 1) },
      expectedVersion: 0,
      withPtxGradients: true,
    };

    // pretrain-mix's gradients, piped chunk by chunk into the update (nothing buffered here).
    const gamma = 27.8; // the paper's value
    const ptxReq: pretrainMix.PtxGradientsRequest = { policyWeights: { modelId: "policy", version: 0, source: "" }, gamma, sequences: 3, sequenceLength: 24, cursor: 5, seed: 7, temperature: 0, dtype: common.Dtype.DTYPE_FLOAT32, textCorpus: undefined };
    const upd = policy.clientStream("ppoUpdate");
    await upd.write({ part: { $case: "minibatch", minibatch } });
    let ptxLoss: pretrainMix.PtxLoss | undefined;
    for await (const m of mix.serverStream("ptxGradients", ptxReq)) {
      const part = (m as pretrainMix.PtxGradientsResponse).part;
      if (part?.$case === "loss") ptxLoss = part.loss;
      else if (part?.$case === "chunk") await upd.write({ part: { $case: "ptxGradients", ptxGradients: part.chunk } });
    }
    const r = await upd.end();
    assert.ok(ptxLoss && ptxLoss.cacheHit === false && ptxLoss.tokens === 3 * 23);
    assert.equal(r.policyWeights?.version, 1);

    // Single process, from scratch: the same pretraining windows (SampleBatch at the same cursor),
    // ONE objective for the policy, one AdamW step per model.
    const sb = await mix.unary("sampleBatch", { split: pretrainMix.Split.SPLIT_TRAIN, sequences: 3, sequenceLength: 24, cursor: 5, seed: 7, textCorpus: undefined });
    const lm = GPT2.fromHostTensors(p0.config, p0.tensors);
    const cr = ScalarHeadModel.fromHostTensors(c0.config, c0.tensors);
    const opts = { optimizer: { beta1: 0.9, beta2: 0.95, epsilon: 1e-6, weightDecay: 0.01 }, schedule: { kind: "constant" as const, lr: 3e-3 }, maxGradNorm: 1 };
    const pt = new Trainer(lm.parameters(), opts);
    const ct = new Trainer(cr.parameters(), opts);
    const rows: number[][] = [];
    let o = 0;
    for (const L of seqs.lengths) {
      rows.push(seqs.tokens.slice(o, o + L));
      o += L;
    }
    const T = Math.max(...seqs.lengths);
    const padded = tf.tensor2d(rows.flatMap((s) => [...s, ...Array(T - s.length).fill(0)]), [rows.length, T], "int32");
    const at: number[] = [];
    const targets: number[] = [];
    rows.forEach((s, b) => {
      for (let p = seqs.promptLengths[b]; p < s.length; p++) {
        at.push(b * (T - 1) + p - 1);
        targets.push(s[p]);
      }
    });
    const pre = tf.tensor2d(sb.batch?.tokens ?? [], [3, 24], "int32");
    const preMask = tf.ones([3, 23]) as tf.Tensor2D;
    let ptxHere = 0;
    pt.accumulate(() => {
      const logits = tf.reshape(lm.forward(tf.slice(padded, [0, 0], [rows.length, T - 1]) as tf.Tensor2D), [-1, CONFIG.vocabSize]);
      const logp = tf.sum(tf.mul(tf.logSoftmax(tf.gather(logits, tf.tensor1d(at, "int32"))), tf.oneHot(tf.tensor1d(targets, "int32"), CONFIG.vocabSize)), -1) as tf.Tensor1D;
      const policyLoss = ppoPolicyLoss(logp, tf.tensor1d(ev.logprobs), tf.tensor1d(advantages), 0.2).loss;
      const lmL = lmLoss(lm, pre, preMask);
      ptxHere = lmL.dataSync()[0];
      return tf.add(policyLoss, tf.mul(lmL, gamma)) as tf.Scalar;
    });
    const refPolicy = pt.update();
    ct.accumulate(() => {
      const v = tf.gather(tf.reshape(cr.values(padded), [-1]), tf.tensor1d(at.map((i) => Math.floor(i / (T - 1)) * T + (i % (T - 1))), "int32")) as tf.Tensor1D;
      return tf.mul(ppoValueLoss(v, tf.tensor1d(ev.values), tf.tensor1d(returns), 0.2).loss, 0.5) as tf.Scalar;
    });
    const refCritic = ct.update();

    assert.ok(Math.abs(ptxLoss.loss - ptxHere) < 1e-5, `pretraining loss ${ptxLoss.loss} vs ${ptxHere}`);
    assert.ok(Math.abs(r.policyGradNorm - refPolicy.gradNorm) < 1e-4 * refPolicy.gradNorm, `policy grad norm ${r.policyGradNorm} vs ${refPolicy.gradNorm}`);
    assert.ok(Math.abs(r.criticGradNorm - refCritic.gradNorm) < 1e-4 * Math.max(refCritic.gradNorm, 1e-6), `critic grad norm ${r.criticGradNorm} vs ${refCritic.gradNorm}`);
    const p1 = await weights(policyPb.ModelKind.MODEL_KIND_POLICY);
    const c1 = await weights(policyPb.ModelKind.MODEL_KIND_CRITIC);
    const worst = (got: NamedHostTensors, want: NamedHostTensors) => Math.max(...[...want].map(([name, t]) => maxAbsDiff(got.get(name)?.data ?? [], t.data)));
    const dPolicy = worst(p1.tensors, lm.toHostTensors());
    const dCritic = worst(c1.tensors, cr.toHostTensors());
    const moved = worst(p1.tensors, p0.tensors);
    console.log(`ptx equivalence: policy max |dW| ${dPolicy.toExponential(2)}, critic ${dCritic.toExponential(2)}, step size ${moved.toExponential(2)}; grad norm ${r.policyGradNorm.toFixed(4)} (clipped to 1)`);
    assert.ok(moved > 1e-3, `the step moved the policy (${moved})`);
    assert.ok(dPolicy < 1e-5 && dCritic < 1e-5, `policy ${dPolicy}, critic ${dCritic}`);

    tf.dispose([padded, pre, preMask]);
    pt.dispose();
    ct.dispose();
    lm.dispose();
    cr.dispose();
  } finally {
    policy.close();
    rm.close();
    mix.close();
  }
});
