/**
 * Generated gRPC contracts (ts-proto, grpc-js services), one namespace per proto package:
 * `common` (rlhf.common.v1), `referenceModel` (rlhf.reference_model.v1), ...
 */
import { join } from "node:path";

export * from "./gen";

/** Path of the FileDescriptorSet of every contract (for server reflection). */
export const descriptorSetPath: string = join(__dirname, "gen", "descriptors.binpb");

/**
 * WeightsRef.model_id of the policy's weights, as the contracts name it (PolicyService.StreamWeights,
 * PretrainMix's policy_weights, the policy's GetInfo): the one spelling of it in the code.
 */
export const POLICY_MODEL_ID = "policy";
