// The policy's calls of one PPO iteration: Generate (the rollout), Evaluate (the old log-probs and
// values) and PpoUpdate (one clipped step of both models, with the pretraining gradients).
import { common, type policy as policyPb } from "@rlhf/proto";
import { readHeaderFirst, yieldToEventLoop, type CallContext, type SerialQueue, type Send } from "@rlhf/grpc-kit";
import { annotateActiveSpan, countTokens } from "@rlhf/telemetry";
import { TensorSetReceiver, tokenBatchFromProto, temperatureFromProto } from "@rlhf/tensor-transport";
import { DomainError, InvalidArgumentError } from "@rlhf/errors";
import { generate, splitRows, type GeneratedSequence } from "@rlhf/model";
import type { NamedHostTensors } from "@rlhf/compute";
import { POLICY_MODEL_ID } from "@rlhf/model-service";
import type { PolicyState } from "../policy";
import type { PolicyConfig } from "../config";
import { evaluateSequences, ppoStep, responseLengths, type PpoBatch, type PpoSettings } from "../compute";
import { floatsFromProto, optimizerFromProto, runIdFromProto, seqsFromProto } from "./common";

/** Payload budget of one GenerateResponse: well inside the 4 MiB message limit. */
const MESSAGE_BUDGET_BYTES = 3 * 1024 * 1024;
/** Most samples per prompt. */
const MAX_SAMPLES_PER_PROMPT = 64;

interface GenerateSettings {
  k: number;
  temperature: number;
  topK: number;
  topP: number;
  maxNewTokens: number;
  seed: number;
  eos?: number;
}

/** Generate: K samples per prompt, streamed in groups of whole prompts under the message budget. */
export function generateHandler(state: PolicyState, queue: SerialQueue, cfg: PolicyConfig) {
  return async (req: policyPb.GenerateRequest, send: Send<policyPb.GenerateResponse>, ctx: CallContext): Promise<void> => {
    const result = await queue.run(async () => {
      const policy = state.policy();
      const { vocabSize: V, nPositions } = policy.config;
      const k = req.samplesPerPrompt || 1;
      if (k > MAX_SAMPLES_PER_PROMPT) throw new InvalidArgumentError("samples_per_prompt", `must be in 1..${MAX_SAMPLES_PER_PROMPT}, got ${k}`);
      if (req.maxNewTokens < 1 || req.maxNewTokens > cfg.maxNewTokens) throw new InvalidArgumentError("max_new_tokens", `must be in 1..${cfg.maxNewTokens}, got ${req.maxNewTokens}`);
      const maxPrompts = Math.floor(cfg.maxGenerateSequences / k);
      if (maxPrompts < 1) throw new InvalidArgumentError("samples_per_prompt", `${k} samples exceed MAX_GENERATE_SEQUENCES = ${cfg.maxGenerateSequences}`);
      const packed = tokenBatchFromProto(req.prompts, { vocabSize: V, nPositions, maxSequences: maxPrompts, maxTokens: maxPrompts * nPositions }, "prompts");
      packed.promptLengths?.forEach((p, i) => {
        if (p !== packed.lengths[i]) throw new InvalidArgumentError(`prompts.prompt_lengths[${i}]`, `must be empty or equal lengths[${i}] = ${packed.lengths[i]}, got ${p}`);
      });
      packed.lengths.forEach((L, i) => {
        if (L + req.maxNewTokens > nPositions) throw new InvalidArgumentError(`prompts.lengths[${i}]`, `${L} prompt tokens + max_new_tokens ${req.maxNewTokens} exceed n_positions ${nPositions}`);
      });
      const topP = req.topP === 0 ? 1 : req.topP;
      if (!Number.isFinite(topP) || topP <= 0 || topP > 1) throw new InvalidArgumentError("top_p", `must be in (0, 1] (or 0 for 1.0), got ${req.topP}`);
      if (req.topK > V) throw new InvalidArgumentError("top_k", `must be at most the vocabulary size ${V} (0 for no limit), got ${req.topK}`);
      if (!Number.isSafeInteger(req.seed) || req.seed < 0) throw new InvalidArgumentError("seed", `must be a safe integer >= 0, got ${req.seed}`);
      const eos = req.eosTokenId ?? state.defaultEos(cfg.eosTokenId);
      if (!Number.isInteger(eos) || eos < 0 || eos >= V) throw new InvalidArgumentError(req.eosTokenId === undefined ? "eos_token_id (EOS_TOKEN_ID)" : "eos_token_id", `must be an id in 0..${V - 1}, got ${eos}`);
      const s: GenerateSettings = { k, temperature: temperatureFromProto(req.temperature), topK: req.topK, topP, maxNewTokens: req.maxNewTokens, seed: req.seed, eos: req.ignoreEos ? undefined : eos };
      const prompts = splitRows(packed.tokens, packed.lengths);
      ctx.log.debug({ prompts: prompts.length, samplesPerPrompt: k, maxNewTokens: s.maxNewTokens }, "generate");
      // Row r = prompt * K + sample; chunks of GENERATE_BATCH rows keep memory bounded and, with
      // rowOffset, draw exactly what one big batch would.
      const rows = prompts.flatMap((p) => Array.from({ length: k }, () => p));
      const out: GeneratedSequence[] = [];
      for (let start = 0; start < rows.length; start += cfg.generateBatch) {
        // Health checks and cancellations get through between chunks.
        if (start > 0) {
          await yieldToEventLoop();
          ctx.signal.throwIfAborted();
        }
        out.push(
          ...generate(policy, rows.slice(start, start + cfg.generateBatch), {
            maxNewTokens: s.maxNewTokens,
            temperature: s.temperature,
            topK: s.topK,
            topP: s.topP,
            eosId: s.eos,
            seed: s.seed,
            rowOffset: start,
          }),
        );
      }
      countTokens("generate", out.reduce((a, g) => a + g.tokens.length, 0));
      return { prompts, out, weights: state.policyWeights };
    }, ctx.signal);
    // Whole prompts per message, under the budget (a prompt's K samples are never split).
    const { prompts, out, weights } = result;
    // On the Generate server span: what this call did, beside its duration.
    annotateActiveSpan({ "rlhf.prompts": prompts.length, "rlhf.sequences": out.length, "rlhf.response_tokens": out.reduce((a, g) => a + g.tokens.length, 0), "rlhf.weights_version": weights.version });
    const k = out.length / prompts.length;
    let msg = empty(weights);
    let bytes = 0;
    for (let i = 0; i < prompts.length; i++) {
      const group = out.slice(i * k, (i + 1) * k);
      const groupBytes = group.reduce((a, g) => a + (prompts[i].length + g.tokens.length) * 5 + g.logProbs.length * 5 + 16, 0);
      if (msg.promptIndices.length > 0 && bytes + groupBytes > MESSAGE_BUDGET_BYTES) {
        await send(msg);
        msg = empty(weights);
        bytes = 0;
      }
      msg.promptIndices.push(i);
      const seqs = msg.sequences as common.TokenBatch;
      for (const g of group) {
        seqs.tokens.push(...prompts[i], ...g.tokens);
        seqs.lengths.push(prompts[i].length + g.tokens.length);
        seqs.promptLengths.push(prompts[i].length);
        msg.logprobs.push(...g.logProbs);
        msg.eos.push(g.finishReason === "eos");
      }
      bytes += groupBytes;
    }
    if (msg.promptIndices.length > 0) await send(msg);
  };
}

function empty(weights: common.WeightsRef): policyPb.GenerateResponse {
  return { promptIndices: [], sequences: { tokens: [], lengths: [], promptLengths: [] }, logprobs: [], eos: [], weights };
}

/** Evaluate: per-token log-probabilities of the policy and values of the critic. */
export function evaluateHandler(state: PolicyState, queue: SerialQueue, cfg: PolicyConfig) {
  return async (req: policyPb.EvaluateRequest, ctx: CallContext): Promise<policyPb.EvaluateResponse> => {
    const temperature = temperatureFromProto(req.temperature);
    return queue.run(() => {
      const policy = state.policy();
      const critic = req.skipValues ? undefined : state.critic();
      const seqs = seqsFromProto(req.sequences, "sequences", policy.config, { maxSequences: cfg.maxBatchSequences, maxTokens: cfg.maxBatchTokens }, false);
      ctx.log.debug({ sequences: seqs.lengths.length, tokens: seqs.tokens.length }, "evaluate");
      const r = evaluateSequences(policy, critic, seqs, temperature, cfg.microBatchTokens);
      countTokens("evaluate", seqs.tokens.length);
      annotateActiveSpan({ "rlhf.sequences": seqs.lengths.length, "rlhf.tokens": seqs.tokens.length, "rlhf.weights_version": state.policyWeights.version });
      return {
        logprobs: Array.from(r.logprobs),
        values: r.values ? Array.from(r.values) : [],
        lengths: responseLengths(seqs),
        policyWeights: state.policyWeights,
        criticWeights: critic ? state.criticWeights : undefined,
      };
    }, ctx.signal);
  };
}
/** Validated hyperparameters, with the optimiser settings of both models. */
function settingsFromProto(h: policyPb.PpoHyperparameters | undefined, cfg: PolicyConfig) {
  const f = "minibatch.hyperparameters";
  if (!h) throw new InvalidArgumentError(f, "is required");
  const bad = (x: string, msg: string) => new InvalidArgumentError(`${f}.${x}`, msg);
  if (!Number.isFinite(h.clipRange) || h.clipRange <= 0 || h.clipRange > 1) throw bad("clip_range", `must be in (0, 1], got ${h.clipRange}`);
  if (!Number.isFinite(h.valueClipRange) || h.valueClipRange < 0) throw bad("value_clip_range", `must be >= 0 (0 disables value clipping), got ${h.valueClipRange}`);
  if (!Number.isFinite(h.valueLossCoef) || h.valueLossCoef < 0) throw bad("value_loss_coef", `must be >= 0, got ${h.valueLossCoef}`);
  if (!Number.isFinite(h.entropyCoef) || h.entropyCoef < 0) throw bad("entropy_coef", `must be >= 0, got ${h.entropyCoef}`);
  const p = optimizerFromProto(h.policyOptimizer, `${f}.policy_optimizer`);
  const c = optimizerFromProto(h.criticOptimizer, `${f}.critic_optimizer`);
  const s: PpoSettings = {
    clipRange: h.clipRange,
    valueClipRange: h.valueClipRange,
    valueLossCoef: h.valueLossCoef,
    entropyCoef: h.entropyCoef,
    temperature: temperatureFromProto(h.temperature, `${f}.temperature`),
    policyLr: p.lr,
    policyMaxGradNorm: p.maxGradNorm,
    criticLr: c.lr,
    criticMaxGradNorm: c.maxGradNorm,
    microBatchTokens: cfg.microBatchTokens,
  };
  return { s, policyAdam: p.adam, criticAdam: c.adam };
}

/**
 * PpoUpdate: the minibatch, then optionally the pretraining gradients as a tensor-set stream.
 * Everything is validated and received before the queue is entered; the version check and the
 * step run on it, so nothing changes unless the whole request is good.
 */
export function ppoUpdateHandler(state: PolicyState, queue: SerialQueue, cfg: PolicyConfig) {
  return async (reqs: AsyncIterable<policyPb.PpoUpdateRequest>, ctx: CallContext): Promise<policyPb.PpoUpdateResponse> => {
    // Reserves its bytes only when a gradients header arrives; the finally gives them back when
    // the stream failed or was cancelled before finish() (finish() gives them back itself).
    const receiver = new TensorSetReceiver({ expectKind: common.TensorSetKind.TENSOR_SET_KIND_GRADIENTS, maxTotalBytes: cfg.maxUploadBytes, field: "ptx_gradients" });
    let withPtx = false;
    try {
      const mb = await readHeaderFirst(reqs, {
        header: "minibatch",
        cases: "minibatch, ptx_gradients",
        missing: "the stream held no minibatch",
        onHeader: (part) => part.minibatch,
        onPart: (part, _field, mb) => {
          if (!mb.withPtxGradients) throw new InvalidArgumentError("ptx_gradients", "sent but minibatch.with_ptx_gradients is false");
          withPtx = true;
          receiver.push(part.ptxGradients);
        },
      });
      if (mb.withPtxGradients && !withPtx) throw new InvalidArgumentError("ptx_gradients", "minibatch.with_ptx_gradients is true but no gradients followed");
      const m = mb;
      const { s, policyAdam, criticAdam } = settingsFromProto(m.hyperparameters, cfg);
      const runId = runIdFromProto(m.runId, "minibatch.run_id");
      let ptx: NamedHostTensors | undefined;
      if (withPtx) {
        const set = receiver.finish();
        const w = set.weights;
        if (!w || w.modelId !== POLICY_MODEL_ID || w.version !== m.expectedVersion) {
          throw new InvalidArgumentError("ptx_gradients.header.weights", `must be policy version ${m.expectedVersion} (the minibatch's expected_version), got ${w ? `${w.modelId || "(no model_id)"} version ${w.version}` : "none"}`);
        }
        ptx = set.tensors;
      }
      return queue.run(async () => {
        const policy = state.policy();
        const critic = state.critic();
        const current = state.policyWeights.version;
        if (m.expectedVersion !== current) {
          throw new DomainError("ABORTED", `expected_version ${m.expectedVersion} is not the policy's current version ${current}: nothing was changed (was this update already applied?)`, "minibatch.expected_version");
        }
        const seqs = seqsFromProto(m.sequences, "minibatch.sequences", policy.config, { maxSequences: cfg.maxBatchSequences, maxTokens: cfg.maxBatchTokens }, true);
        const n = responseLengths(seqs).reduce((a, r) => a + r, 0);
        const batch: PpoBatch = {
          seqs,
          oldLogprobs: floatsFromProto(m.oldLogprobs, n, "minibatch.old_logprobs"),
          oldValues: floatsFromProto(m.oldValues, n, "minibatch.old_values"),
          advantages: floatsFromProto(m.advantages, n, "minibatch.advantages"),
          returns: floatsFromProto(m.returns, n, "minibatch.returns"),
        };
        if (ptx) checkGradientNames(ptx, policy.parameters());
        const trainers = state.ppoTrainers();
        trainers.policy.optimizer.configure(policyAdam);
        trainers.critic.optimizer.configure(criticAdam);
        state.training = true;
        try {
          const stats = await ppoStep(policy, critic, trainers, batch, s, ptx);
          state.bumpPolicy();
          state.bumpCritic();
          state.weightsChanged("ppo_update", runId);
          countTokens("ppo_update", seqs.tokens.length);
          annotateActiveSpan({ "rlhf.sequences": seqs.lengths.length, "rlhf.response_tokens": n, "rlhf.ptx": Boolean(ptx), "rlhf.weights_version": m.expectedVersion, "rlhf.weights_version_after": state.policyWeights.version });
          ctx.log.debug({ responseTokens: n, ptx: Boolean(ptx), policyVersion: state.policyWeights.version }, "ppo update");
          return { ...stats, policyWeights: state.policyWeights, criticWeights: state.criticWeights };
        } finally {
          state.training = false;
        }
      }, ctx.signal);
    } finally {
      receiver.abandon();
    }
  };
}

/** The gradient set must name exactly the policy's parameters, with their shapes. */
function checkGradientNames(ptx: NamedHostTensors, params: ReadonlyMap<string, { shape: number[] }>): void {
  for (const [name, t] of ptx) {
    const p = params.get(name);
    if (!p) throw new InvalidArgumentError(`ptx_gradients["${name}"]`, "is not a parameter of the policy");
    if (t.dtype !== "float32" || t.shape.join() !== p.shape.join()) throw new InvalidArgumentError(`ptx_gradients["${name}"]`, `must be float32 [${p.shape.join(", ")}], got ${t.dtype} [${t.shape.join(", ")}]`);
    for (let j = 0; j < t.data.length; j++) {
      if (!Number.isFinite(t.data[j])) throw new InvalidArgumentError(`ptx_gradients["${name}"][${j}]`, `must be finite, got ${t.data[j]}`);
    }
  }
  const missing = [...params.keys()].filter((n) => !ptx.has(n));
  if (missing.length > 0) throw new InvalidArgumentError("ptx_gradients", `misses ${missing.length} of the policy's parameters, e.g. "${missing[0]}"`);
}
