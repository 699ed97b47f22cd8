import { common, policy as policyPb, rewardModel } from "@rlhf/proto";
import { createClient, type CallContext, type SerialQueue, type Send } from "@rlhf/grpc-kit";
import { receiveTensorSet, sendTensorSet, modelConfigFromProto, modelConfigToProto, wireFloatFromProto } from "@rlhf/tensor-transport";
import { FailedPreconditionError, InvalidArgumentError, NotFoundError } from "@rlhf/errors";
import type { NamedHostTensors } from "@rlhf/compute";
import type { PolicyState } from "../policy";
import type { PolicyConfig } from "../config";
import { runIdFromProto } from "./common";

function loaded(state: PolicyState): policyPb.LoadCheckpointResponse {
  const pc = state.policyConfig;
  const cc = state.criticConfig;
  return {
    policyWeights: state.policyWeights,
    policyConfig: pc ? modelConfigToProto(pc) : undefined,
    criticWeights: state.criticWeights,
    criticConfig: cc ? modelConfigToProto(cc) : undefined,
  };
}

/** LoadCheckpoint: a policy checkpoint, a plain model folder, or a seeded random policy. */
export function loadCheckpointHandler(state: PolicyState, queue: SerialQueue) {
  return async (req: policyPb.LoadCheckpointRequest): Promise<policyPb.LoadCheckpointResponse> => {
    const src = req.source;
    if (!src) throw new InvalidArgumentError("source", "set one of checkpoint_dir, model_dir, random_init");
    const runId = runIdFromProto(req.runId, "run_id");
    switch (src.$case) {
      case "checkpointDir":
        return queue.runFile(`LoadCheckpoint from ${src.checkpointDir}`, async () => {
          await state.loadCheckpoint(src.checkpointDir);
          state.weightsChanged("load_checkpoint", runId);
          return loaded(state);
        });
      case "modelDir":
        return queue.runFile(`LoadCheckpoint from ${src.modelDir}`, async () => {
          await state.loadModelDir(src.modelDir);
          state.weightsChanged("load_checkpoint", runId);
          return loaded(state);
        });
      case "randomInit": {
        const config = modelConfigFromProto(src.randomInit.config, "random_init.config");
        const seed = src.randomInit.seed;
        if (!Number.isSafeInteger(seed) || seed < 0 || seed > 2 ** 31 - 1) throw new InvalidArgumentError("random_init.seed", `must be in [0, 2^31 - 1], got ${seed}`);
        return queue.run(() => {
          state.loadRandom(config, seed);
          state.weightsChanged("load_checkpoint", runId);
          return loaded(state);
        });
      }
    }
  };
}

/** SaveCheckpoint: policy, critic, both optimisers' state and the versions, atomically. */
export function saveCheckpointHandler(state: PolicyState, queue: SerialQueue) {
  return async (req: policyPb.SaveCheckpointRequest): Promise<policyPb.SaveCheckpointResponse> =>
    queue.runFile(`SaveCheckpoint to ${req.dir}`, async () => {
      const r = await state.save(req.dir);
      return { dir: r.dir, policyWeights: state.policyWeights, criticWeights: state.criticWeights, bytesWritten: r.bytes };
    });
}

/** InitCritic: from a reward-model checkpoint folder or streamed from the reward-model service. */
export function initCriticHandler(state: PolicyState, queue: SerialQueue, cfg: PolicyConfig) {
  return async (req: policyPb.InitCriticRequest, ctx: CallContext): Promise<policyPb.InitCriticResponse> => {
    const src = req.source;
    if (!src) throw new InvalidArgumentError("source", "set one of checkpoint_dir, reward_model");
    const done = () => ({ criticWeights: state.criticWeights, criticConfig: modelConfigToProto(state.critic().config) });
    if (src.$case === "checkpointDir") {
      return queue.runFile(`InitCritic from ${src.checkpointDir}`, async () => {
        await state.initCriticFromDir(src.checkpointDir);
        return done();
      });
    }
    const address = src.rewardModel.address || cfg.rewardModelAddr;
    if (!address) throw new FailedPreconditionError("reward_model.address: empty and REWARD_MODEL_ADDR is not configured on this policy service");
    // Pulled outside the queue (it may take a while); the swap itself is queued.
    const client = createClient(rewardModel.RewardModelServiceClient, address, { maxReceiveMessageBytes: cfg.maxReceiveBytes });
    let pulled: { config: ReturnType<typeof modelConfigFromProto>; tensors: NamedHostTensors; version: number };
    try {
      const stream = client.serverStream("streamWeights", { version: src.rewardModel.version, dtype: common.Dtype.DTYPE_FLOAT32 }, { deadlineMs: cfg.rewardModelDeadlineMs, signal: ctx.signal });
      const set = await receiveTensorSet(stream, (m: rewardModel.StreamWeightsResponse) => m.chunk, {
        expectKind: common.TensorSetKind.TENSOR_SET_KIND_WEIGHTS,
        maxTotalBytes: cfg.maxUploadBytes,
        field: "reward_model.StreamWeights",
      });
      pulled = { config: modelConfigFromProto(set.modelConfig, "reward_model.StreamWeights header.model_config"), tensors: set.tensors, version: set.weights?.version ?? 0 };
    } finally {
      client.close();
    }
    return queue.run(() => {
      state.initCritic(pulled.config, pulled.tensors, `reward-model@${address}:${pulled.version}`, "reward_model");
      return done();
    });
  };
}

/** StreamWeights: one consistent snapshot of the policy or the critic (taken on the queue), streamed outside it. */
export function streamWeightsHandler(state: PolicyState, queue: SerialQueue) {
  return async (req: policyPb.StreamWeightsRequest, send: Send<policyPb.StreamWeightsResponse>): Promise<void> => {
    const wire = wireFloatFromProto(req.dtype);
    const isCritic = req.model === policyPb.ModelKind.MODEL_KIND_CRITIC;
    if (!isCritic && req.model !== policyPb.ModelKind.MODEL_KIND_POLICY) throw new InvalidArgumentError("model", `must be MODEL_KIND_POLICY or MODEL_KIND_CRITIC, got ${policyPb.ModelKind[req.model] ?? req.model}`);
    const snap = await queue.run(() => {
      const model = isCritic ? state.critic() : state.policy();
      const weights = isCritic ? (state.criticWeights as NonNullable<PolicyState["criticWeights"]>) : state.policyWeights;
      if (req.version !== undefined && req.version !== weights.version) {
        throw new NotFoundError("version", `${req.version} is not the ${isCritic ? "critic" : "policy"}'s current version (${weights.version})`);
      }
      return { tensors: model.toHostTensors(), weights, config: modelConfigToProto(model.config) };
    });
    await sendTensorSet(send, (chunk): policyPb.StreamWeightsResponse => ({ chunk }), snap.tensors, { kind: common.TensorSetKind.TENSOR_SET_KIND_WEIGHTS, weights: snap.weights, modelConfig: snap.config }, { wireDtype: wire });
  };
}
