/**
 * Pulls the policy's weights at a version over PolicyService.StreamWeights: the one client of
 * that stream used by every service that loads "the policy at version N" (reference-model,
 * reward-model, pretrain-mix).
 */
import { POLICY_MODEL_ID, common, policy } from "@rlhf/proto";
import { createClient, type Logger } from "@rlhf/grpc-kit";
import { FailedPreconditionError, InvalidArgumentError } from "@rlhf/errors";
import { GPT2, type GPT2Config } from "@rlhf/model";
import type { NamedHostTensors } from "@rlhf/compute";
import { modelConfigFromProto, receiveTensorSet } from "@rlhf/tensor-transport";
import { WeightsCache } from "./weights-cache";

/** model_id of the policy's weights; defined with the contracts, re-exported for the services. */
export { POLICY_MODEL_ID };

/** Options of {@link pullPolicyWeights}. */
export interface PullPolicyWeightsOptions {
  /** POLICY_ADDR of the caller; undefined means not configured (FAILED_PRECONDITION). */
  address: string | undefined;
  /** The caller's service name, for the error message. */
  caller: string;
  /** Stream only this version (NOT_FOUND from the policy otherwise); undefined: the current one. */
  version?: number;
  deadlineMs: number;
  maxReceiveMessageBytes: number;
  /** Largest weight set accepted. */
  maxTotalBytes: number;
  /** Cancels the pull (e.g. the caller's own call was cancelled). */
  signal?: AbortSignal;
}

/** A verified weight set with its architecture and version. */
export interface PulledWeights {
  config: GPT2Config;
  tensors: NamedHostTensors;
  /** Version the policy streamed (the requested one when it says none). */
  version: number;
  modelId: string;
  /** "policy@host:port", for WeightsRef.source. */
  source: string;
}

/** Streams, verifies (digest, shapes, finite values) and returns the policy's weights. */
export async function pullPolicyWeights(opts: PullPolicyWeightsOptions): Promise<PulledWeights> {
  if (!opts.address) throw new FailedPreconditionError(`policy_weights: POLICY_ADDR is not configured on this ${opts.caller}`);
  const client = createClient(policy.PolicyServiceClient, opts.address, { maxReceiveMessageBytes: opts.maxReceiveMessageBytes });
  try {
    const stream = client.serverStream(
      "streamWeights",
      { model: policy.ModelKind.MODEL_KIND_POLICY, version: opts.version, dtype: common.Dtype.DTYPE_FLOAT32 },
      { deadlineMs: opts.deadlineMs, signal: opts.signal },
    );
    const set = await receiveTensorSet(stream, (m: policy.StreamWeightsResponse) => m.chunk, {
      expectKind: common.TensorSetKind.TENSOR_SET_KIND_WEIGHTS,
      maxTotalBytes: opts.maxTotalBytes,
      field: "policy.StreamWeights",
    });
    return {
      config: modelConfigFromProto(set.modelConfig, "policy.StreamWeights header.model_config"),
      tensors: set.tensors,
      version: set.weights?.version ?? opts.version ?? 0,
      modelId: set.weights?.modelId || POLICY_MODEL_ID,
      source: `policy@${opts.address}`,
    };
  } finally {
    client.close();
  }
}

/** What a service's config says about pulling the policy's weights (POLICY_ADDR and its limits). */
export interface PolicyPullConfig {
  policyAddr?: string;
  policyDeadlineMs: number;
  maxReceiveBytes: number;
  maxUploadBytes: number;
}

/** The pull options of a service's config; `caller` names the service in its errors. */
export function policyPullOptions(cfg: PolicyPullConfig, caller: string): Omit<PullPolicyWeightsOptions, "version" | "signal"> {
  return { address: cfg.policyAddr, caller, deadlineMs: cfg.policyDeadlineMs, maxReceiveMessageBytes: cfg.maxReceiveBytes, maxTotalBytes: cfg.maxUploadBytes };
}

/** Trainable policy models by weights version. */
export type PolicyModels = WeightsCache<GPT2>;

/**
 * A cache of at most `maxVersions` policy models whose loader pulls the policy's weights at a
 * version over PolicyService.StreamWeights (the policy's NOT_FOUND passed on) and builds a
 * trainable GPT2 from them.
 */
export function policyModelCache(cfg: PolicyPullConfig, caller: string, maxVersions: number, log: Logger): PolicyModels {
  return new WeightsCache<GPT2>(maxVersions, async (version, signal) => {
    const started = Date.now();
    const pulled = await pullPolicyWeights({ ...policyPullOptions(cfg, caller), version, signal });
    if (pulled.version !== version) throw new FailedPreconditionError(`policy_weights: the policy streamed version ${pulled.version} when asked for ${version}`);
    let model: GPT2;
    try {
      // copy: false: the pulled arrays are ours alone and dropped right after.
      model = GPT2.fromHostTensors(pulled.config, pulled.tensors, { copy: false, trainable: true });
    } catch (e) {
      // Not the caller's fault: the policy streamed weights that are not a GPT-2 of its config.
      if (e instanceof InvalidArgumentError) throw new FailedPreconditionError(`policy_weights: the policy's weights at version ${version} do not build a GPT-2: ${e.message}`);
      throw e;
    }
    log.info({ weightsVersion: version, source: pulled.source, config: pulled.config, pullMs: Date.now() - started }, "policy weights pulled");
    return { model, source: pulled.source };
  });
}
