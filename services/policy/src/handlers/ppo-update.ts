import { common, type policy as policyPb } from "@rlhf/proto";
import { readHeaderFirst, type CallContext, type SerialQueue } from "@rlhf/grpc-kit";
import { annotateActiveSpan, countTokens } from "@rlhf/telemetry";
import { TensorSetReceiver, temperatureFromProto } from "@rlhf/tensor-transport";
import { DomainError, InvalidArgumentError } from "@rlhf/errors";
import type { NamedHostTensors } from "@rlhf/compute";
import type { PolicyState } from "../policy";
import type { PolicyConfig } from "../config";
import { ppoStep, responseLengths, type PpoBatch, type PpoSettings } from "../compute";
import { floatsFromProto, optimizerFromProto, runIdFromProto, seqsFromProto } from "./common";

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
        if (!w || w.modelId !== "policy" || w.version !== m.expectedVersion) {
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
