import { common, rewardModel } from "@rlhf/proto";
import { type CallContext, type SerialQueue, type Send } from "@rlhf/grpc-kit";
import { sendTensorSet, modelConfigFromProto, modelConfigToProto, pullPolicyWeights } from "@rlhf/tensor-transport";
import { InvalidArgumentError, NotFoundError } from "@rlhf/errors";
import { MODEL_ID, type RewardModel } from "../reward";
import type { RewardModelConfig } from "../config";

function loaded(rm: RewardModel): rewardModel.LoadCheckpointResponse {
  const c = rm.config;
  return { weights: rm.weights, config: c ? modelConfigToProto(c) : undefined };
}

/** LoadCheckpoint from a reward-model checkpoint, an LM folder, the policy, or a seeded random trunk. */
export function loadCheckpointHandler(rm: RewardModel, queue: SerialQueue, cfg: RewardModelConfig) {
  return async (req: rewardModel.LoadCheckpointRequest, ctx: CallContext): Promise<rewardModel.LoadCheckpointResponse> => {
    const src = req.source;
    if (!src) throw new InvalidArgumentError("source", "set one of checkpoint_dir, model_dir, policy_weights, random_init");
    switch (src.$case) {
      case "checkpointDir":
        return queue.run(async () => {
          await rm.loadCheckpoint(src.checkpointDir);
          return loaded(rm);
        });
      case "modelDir":
        return queue.run(async () => {
          await rm.loadModelDir(src.modelDir);
          return loaded(rm);
        });
      case "randomInit": {
        const config = modelConfigFromProto(src.randomInit.config, "random_init.config");
        const seed = src.randomInit.seed;
        if (!Number.isSafeInteger(seed) || seed < 0 || seed > 2 ** 31 - 1) throw new InvalidArgumentError("random_init.seed", `must be in [0, 2^31 - 1], got ${seed}`);
        return queue.run(() => {
          rm.loadRandom(config, seed);
          return loaded(rm);
        });
      }
      case "policyWeights": {
        const pulled = await pullPolicyWeights({
          address: cfg.policyAddr,
          caller: "reward-model",
          version: src.policyWeights.version,
          deadlineMs: cfg.policyDeadlineMs,
          maxReceiveMessageBytes: cfg.maxReceiveBytes,
          maxTotalBytes: cfg.maxUploadBytes,
          signal: ctx.signal,
        });
        return queue.run(() => {
          rm.loadTrunk(pulled.config, pulled.tensors, `${pulled.source}:${pulled.version}`);
          return loaded(rm);
        });
      }
    }
  };
}

/** SaveCheckpoint: config.json + model.safetensors (score.* included) + state.json, atomically. */
export function saveCheckpointHandler(rm: RewardModel, queue: SerialQueue) {
  return async (req: rewardModel.SaveCheckpointRequest): Promise<rewardModel.SaveCheckpointResponse> =>
    queue.run(async () => {
      const r = await rm.save(req.dir);
      return { dir: r.dir, weights: rm.weights, bytesWritten: r.bytes };
    });
}

/** StreamWeights: one consistent snapshot (taken on the queue), streamed outside it. */
export function streamWeightsHandler(rm: RewardModel, queue: SerialQueue) {
  return async (req: rewardModel.StreamWeightsRequest, send: Send<rewardModel.StreamWeightsResponse>): Promise<void> => {
    let wire: "float32" | "float16";
    if (req.dtype === common.Dtype.DTYPE_FLOAT32) wire = "float32";
    else if (req.dtype === common.Dtype.DTYPE_FLOAT16) wire = "float16";
    else throw new InvalidArgumentError("dtype", `must be DTYPE_FLOAT32 or DTYPE_FLOAT16, got ${common.Dtype[req.dtype] ?? req.dtype}`);
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
