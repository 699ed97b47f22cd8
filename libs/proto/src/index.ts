/**
 * Generated gRPC contracts (ts-proto, grpc-js services), one namespace per proto package:
 * `common` (rlhf.common.v1), `referenceModel` (rlhf.reference_model.v1), ...
 */
import { join } from "node:path";

export * from "./gen";

/** Path of the FileDescriptorSet of every contract (for server reflection). */
export const descriptorSetPath: string = join(__dirname, "gen", "descriptors.binpb");
