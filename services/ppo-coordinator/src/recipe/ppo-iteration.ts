/**
 * One PPO(-ptx) iteration, as ARCHITECTURE.md draws it: generate; then score, reference
 * log-probs and evaluate in parallel; per-token rewards with the KL penalty, GAE, whitening over
 * the whole batch; minibatch updates, each with its pretraining gradients streamed from
 * pretrain-mix straight into the policy's update. The maths is libs/rl's and the calls are the
 * gateway's (./gateway.ts): this file holds the order and the bookkeeping, in domain types. Each
 * step is a `phase` span of the iteration's trace (./trace.ts).
 */
import { computeGae, computeKlPenalizedRewards, explainedVariance, minibatchIndices, whiten, type KlController } from "@rlhf/rl";
import type { Gateway } from "./gateway";
import type { PpoCursor, PtxRequest, Sample, TextCorpus } from "./records";
import { phase } from "./trace";

/** PPO settings of one variant (PPO-ptx, or plain PPO with gamma 0). */
export interface PpoSettings {
  seed: number;
  promptsPerIteration: number;
  maxNewTokens: number;
  temperature: number;
  ppoEpochs: number;
  minibatchSize: number;
  clipRange: number;
  valueClipRange: number;
  valueLossCoef: number;
  entropyCoef: number;
  gaeGamma: number;
  gaeLambda: number;
  policyLr: number;
  criticLr: number;
  maxGradNorm: number;
  missingEosPenalty: number;
  /** gamma of PPO-ptx; 0 = plain PPO (no pretraining gradients). */
  ptxGamma: number;
  ptxSequences: number;
  ptxSequenceLength: number;
  /** The user's pretraining text; undefined: pretrain-mix's built-in corpus. */
  textCorpus?: TextCorpus;
}

/** The rollout batch of one iteration; per-token arrays in the response-token layout. */
export interface Rollout {
  samples: Sample[];
  /** R per sequence. */
  lengths: number[];
  /** log pi_old(a_t|s_t) from Evaluate, [N]. */
  logprobs: Float32Array;
  /** log pi_ref(a_t|s_t) of the reference (SFT) model, [N]. */
  logprobsRef: Float32Array;
  /** V(s_t) of the critic at rollout time, [N]. */
  values: Float32Array;
  /** r(x, y) of the reward model per sequence, [B]. */
  scores: number[];
}

const cat = (arrays: readonly number[][]) => Float32Array.from(arrays.flat());

/** Generation, then scoring, reference log-probs and evaluation in parallel. */
export async function rollout(services: Gateway, prompts: number[][], s: PpoSettings, seed: number, timing: Record<string, number>): Promise<Rollout> {
  const gen = await phase(
    "ppo.generate",
    { "rlhf.prompts": prompts.length, "rlhf.max_new_tokens": s.maxNewTokens },
    () => services.policy.generate(prompts, { samplesPerPrompt: 1, temperature: s.temperature, maxNewTokens: s.maxNewTokens, seed }),
    { into: timing, key: "timing/generate_ms" },
  );
  const samples = gen.samples;
  const size = { "rlhf.sequences": samples.length, "rlhf.tokens": samples.reduce((a, x) => a + x.tokens.length, 0) };
  const t = Date.now();
  const [scores, ref, ev] = await Promise.all([
    phase("ppo.score", size, () => services.rewardModel.score(samples)),
    phase("ppo.reference_logprobs", size, () => services.reference.logprobs(samples, s.temperature)),
    phase("ppo.evaluate", size, () => services.policy.evaluate(samples, s.temperature)),
  ]);
  timing["timing/score_ref_evaluate_ms"] = Date.now() - t;
  return {
    samples,
    lengths: samples.map((x) => x.tokens.length - x.promptLength),
    logprobs: Float32Array.from(ev.logprobs),
    logprobsRef: cat(ref),
    values: Float32Array.from(ev.values),
    scores,
  };
}

/**
 * One iteration of `s` on `prompts` (the iteration's slice of the PPO prompts). Advances
 * `cursor` and the KL controller; returns the iteration's metrics (namespaced names).
 */
export async function ppoIteration(services: Gateway, s: PpoSettings, kl: KlController, cursor: PpoCursor, prompts: number[][], judge?: RolloutJudge): Promise<Record<string, number>> {
  const started = Date.now();
  const timing: Record<string, number> = {};
  const it = cursor.iteration + 1;
  const ro = await rollout(services, prompts, s, s.seed * 1_000_003 + it, timing);
  // The gold scorer's view of the same rollouts (built-in data): what the reward model stands for.
  const gold = judge ? ro.samples.map((smp, i) => judge(i, smp.tokens.slice(smp.promptLength))).filter((g): g is GoldJudgement => g !== undefined) : [];
  const beta = kl.beta;
  const { rw, gae, advantages } = await phase(
    "ppo.advantages",
    { "rlhf.sequences": ro.samples.length },
    async () => {
      const rw = computeKlPenalizedRewards(
        { logprobs: ro.logprobs, logprobsRef: ro.logprobsRef, scores: ro.scores, eos: ro.samples.map((x) => x.eos), lengths: ro.lengths },
        { beta, missingEosPenalty: s.missingEosPenalty },
      );
      const gae = computeGae({ rewards: rw.rewards, values: ro.values, lengths: ro.lengths }, { gamma: s.gaeGamma, lambda: s.gaeLambda });
      return { rw, gae, advantages: whiten(gae.advantages, ro.lengths) };
    },
    { into: timing, key: "timing/advantages_ms" },
  );

  // Offsets of each sequence in the response-token layout.
  const offsets = [0];
  for (const R of ro.lengths) offsets.push(offsets[offsets.length - 1] + R);
  const pick = (a: Float32Array, idx: readonly number[]) => idx.flatMap((i) => Array.from(a.subarray(offsets[i], offsets[i + 1])));
  const sums = { policy: 0, value: 0, clip: 0, vclip: 0, approxKl: 0, entropy: 0, gradNorm: 0, ptx: 0, ptxCount: 0, n: 0 };
  const t = Date.now();
  for (let epoch = 0; epoch < s.ppoEpochs; epoch++) {
    for (const idx of minibatchIndices(ro.samples.length, s.minibatchSize, s.seed, cursor.iteration * s.ppoEpochs + epoch)) {
      const optimizer = (learningRate: number) => ({ learningRate, weightDecay: 0, maxGradNorm: s.maxGradNorm });
      const mb = {
        samples: idx.map((i) => ro.samples[i]),
        oldLogprobs: pick(ro.logprobs, idx),
        oldValues: pick(ro.values, idx),
        advantages: pick(advantages, idx),
        returns: pick(gae.returns, idx),
        clipRange: s.clipRange,
        valueClipRange: s.valueClipRange,
        valueLossCoef: s.valueLossCoef,
        entropyCoef: s.entropyCoef,
        temperature: s.temperature,
        policyOptimizer: optimizer(s.policyLr),
        criticOptimizer: optimizer(s.criticLr),
        expectedVersion: cursor.policyVersion,
      };
      // PPO-ptx: the pretraining gradients of the same weights version go with the minibatch.
      const ptx: PtxRequest | undefined =
        s.ptxGamma > 0
          ? { policyVersion: cursor.policyVersion, gamma: s.ptxGamma, sequences: s.ptxSequences, sequenceLength: s.ptxSequenceLength, cursor: cursor.ptxCursor, seed: s.seed + 1, temperature: s.temperature, textCorpus: s.textCorpus }
          : undefined;
      const mbAttrs = { "rlhf.epoch": epoch, "rlhf.minibatch": sums.n, "rlhf.sequences": idx.length, "rlhf.weights_version": cursor.policyVersion };
      const res = await services.policy.ppoUpdate(mb, ptx, mbAttrs);
      const ptxLoss = res.ptxLoss;
      if (ptx) cursor.ptxCursor += s.ptxSequences;
      cursor.policyVersion = res.policyVersion ?? cursor.policyVersion + 1;
      sums.policy += res.policyLoss;
      sums.value += res.valueLoss;
      sums.clip += res.clipFraction;
      sums.vclip += res.valueClipFraction;
      sums.approxKl += res.approxKl;
      sums.entropy += res.entropy;
      sums.gradNorm += res.policyGradNorm;
      if (ptxLoss !== undefined) {
        sums.ptx += ptxLoss;
        sums.ptxCount++;
      }
      sums.n++;
    }
  }
  timing["timing/update_ms"] = Date.now() - t;
  kl.update(rw.stats.meanSequenceKl, ro.samples.length);
  cursor.iteration = it;
  cursor.promptCursor += prompts.length;
  const meanLen = ro.lengths.reduce((a, b) => a + b, 0) / ro.lengths.length;
  const metrics: Record<string, number> = {
    // The sequence reward PPO maximises (before the KL term): score plus the missing-EOS penalty.
    "objective/reward": rw.stats.meanScore + s.missingEosPenalty * rw.stats.missingEosFraction,
    "objective/score": rw.stats.meanScore,
    "objective/kl": rw.stats.meanSequenceKl,
    "objective/kl_per_token": rw.stats.meanTokenKl,
    "objective/beta": beta,
    "objective/non_score_reward": rw.stats.meanNonScoreReward,
    "objective/missing_eos_fraction": rw.stats.missingEosFraction,
    "loss/policy": sums.policy / sums.n,
    "loss/value": sums.value / sums.n,
    "policy/clip_fraction": sums.clip / sums.n,
    "policy/approx_kl": sums.approxKl / sums.n,
    "policy/entropy": sums.entropy / sums.n,
    "policy/grad_norm": sums.gradNorm / sums.n,
    "value/clip_fraction": sums.vclip / sums.n,
    "response/length_mean": meanLen,
    ...timing,
    "timing/iteration_ms": Date.now() - started,
  };
  const ev = explainedVariance(ro.values, gae.returns);
  if (Number.isFinite(ev)) metrics["value/explained_variance"] = ev;
  if (gold.length > 0) {
    metrics["gold/score"] = gold.reduce((a, g) => a + g.score, 0) / gold.length;
    metrics["gold/helpfulness"] = gold.reduce((a, g) => a + g.helpfulness, 0) / gold.length;
    metrics["gold/exact_match"] = gold.reduce((a, g) => a + (g.exact ? 1 : 0), 0) / gold.length;
  }
  if (sums.ptxCount > 0) metrics["ptx/loss"] = sums.ptx / sums.ptxCount;
  return metrics;
}

/** The gold scorer's judgement of one rollout response. */
export interface GoldJudgement {
  /** The combined noiseless score (the labelers' score without noise). */
  score: number;
  helpfulness: number;
  exact: boolean;
}

/** Judges rollout `i` (the i-th prompt of the iteration's batch) by its response ids; undefined without a gold answer. */
export type RolloutJudge = (i: number, response: number[]) => GoldJudgement | undefined;
