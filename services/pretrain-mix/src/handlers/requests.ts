import { common, pretrainMix } from "@rlhf/proto";
import { InvalidArgumentError } from "@rlhf/errors";
import type { SplitName, WindowRequest } from "../corpus";
import type { PretrainMixConfig } from "../config";

/** The split a request names; SPLIT_UNSPECIFIED and unknown values are INVALID_ARGUMENT. */
export function splitFromProto(split: pretrainMix.Split, field = "split"): SplitName {
  if (split === pretrainMix.Split.SPLIT_TRAIN) return "train";
  if (split === pretrainMix.Split.SPLIT_VALIDATION) return "validation";
  throw new InvalidArgumentError(field, `must be SPLIT_TRAIN or SPLIT_VALIDATION, got ${pretrainMix.Split[split] ?? split}`);
}

/** The wire type of gradient tensors; anything but FLOAT32 / FLOAT16 is INVALID_ARGUMENT. */
export function wireDtypeFromProto(dtype: common.Dtype, field = "dtype"): "float32" | "float16" {
  if (dtype === common.Dtype.DTYPE_FLOAT32) return "float32";
  if (dtype === common.Dtype.DTYPE_FLOAT16) return "float16";
  throw new InvalidArgumentError(field, `must be DTYPE_FLOAT32 or DTYPE_FLOAT16, got ${common.Dtype[dtype] ?? dtype}`);
}

/**
 * sequences, sequence_length, cursor and seed of a batch request, checked against the limits
 * (`maxSequenceLength` may be lowered by the caller, e.g. to the policy's n_positions).
 */
export function windowRequestFromProto(
  req: { sequences: number; sequenceLength: number; cursor: number; seed: number },
  cfg: Pick<PretrainMixConfig, "maxSequences" | "maxSequenceLength">,
): WindowRequest {
  const { sequences, sequenceLength, cursor, seed } = req;
  if (!Number.isInteger(sequences) || sequences < 1 || sequences > cfg.maxSequences) {
    throw new InvalidArgumentError("sequences", `must be in 1..${cfg.maxSequences} (MAX_SEQUENCES), got ${sequences}`);
  }
  if (!Number.isInteger(sequenceLength) || sequenceLength < 2 || sequenceLength > cfg.maxSequenceLength) {
    throw new InvalidArgumentError("sequence_length", `must be in 2..${cfg.maxSequenceLength} (MAX_SEQUENCE_LENGTH), got ${sequenceLength}`);
  }
  if (!Number.isSafeInteger(cursor) || cursor < 0 || !Number.isSafeInteger(cursor + sequences)) {
    throw new InvalidArgumentError("cursor", `must be an integer in [0, 2^53 - 1 - sequences], got ${cursor}`);
  }
  if (!Number.isSafeInteger(seed) || seed < 0) throw new InvalidArgumentError("seed", `must be an integer in [0, 2^53 - 1], got ${seed}`);
  return { sequences, sequenceLength, cursor, seed };
}
