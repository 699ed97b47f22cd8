import { common, rewardModel } from "@rlhf/proto";
import { type CallContext, type SerialQueue, type Send } from "@rlhf/grpc-kit";
import { sendTensorSet, modelConfigToProto, wireFloatFromProto } from "@rlhf/tensor-transport";
import { loadedWeights, loadWeightsSource, policyPullOptions } from "@rlhf/model-service";
import { NotFoundError } from "@rlhf/errors";
import { MODEL_ID, type RewardModel } from "../reward";
import type { RewardModelConfig } from "../config";

/** LoadCheckpoint from a reward-model checkpoint, an LM folder, the policy, or a seeded random trunk. */
export function loadCheckpointHandler(rm: RewardModel, queue: SerialQueue, cfg: RewardModelConfig) {
  return async (req: rewardModel.LoadCheckpointRequest, ctx: CallContext): Promise<rewardModel.LoadCheckpointResponse> =>
    loadWeightsSource(req.source, { target: rm, queue, missing: "set one of checkpoint_dir, model_dir, policy_weights, random_init", pull: policyPullOptions(cfg, "reward-model"), signal: ctx.signal, loaded: () => loadedWeights(rm) });
}

/** SaveCheckpoint: config.json + model.safetensors (score.* included) + state.json, atomically. */
export function saveCheckpointHandler(rm: RewardModel, queue: SerialQueue) {
  return async (req: rewardModel.SaveCheckpointRequest): Promise<rewardModel.SaveCheckpointResponse> =>
    queue.runFile(`SaveCheckpoint to ${req.dir}`, async () => {
      const r = await rm.save(req.dir);
      return { dir: r.dir, weights: rm.weights, bytesWritten: r.bytes };
    });
}

/** StreamWeights: one consistent snapshot (taken on the queue), streamed outside it. */
export function streamWeightsHandler(rm: RewardModel, queue: SerialQueue) {
  return async (req: rewardModel.StreamWeightsRequest, send: Send<rewardModel.StreamWeightsResponse>): Promise<void> => {
    const wire = wireFloatFromProto(req.dtype);
    const snap = await queue.run(() => {
      const tensors = rm.toHostTensors();
      const weights = rm.weights;
      if (req.version !== undefined && req.version !== weights.version) throw new NotFoundError("version", `${req.version} is not the current version (${weights.version})`);
      return { tensors, weights, config: modelConfigToProto(rm.require().config) };
    });
    await sendTensorSet(send, (chunk): rewardModel.StreamWeightsResponse => ({ chunk }), snap.tensors, {
      kind: common.TensorSetKind.TENSOR_SET_KIND_WEIGHTS,
      weights: { ...snap.weights, modelId: MODEL_ID },
      modelConfig: snap.config,
    }, { wireDtype: wire });
  };
}
