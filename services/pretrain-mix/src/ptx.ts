/**
 * The PPO-ptx term (InstructGPT eq. 2, the gamma * E_pretrain[log pi(x)] part, as a loss to
 * minimise): gradients of gamma * (mean language-model cross-entropy over every predicted token
 * of a batch of pretraining windows) with respect to every parameter of the policy. No gRPC here.
 */
import * as tf from "@tensorflow/tfjs-core";
import { lmLoss, type GPT2 } from "@rlhf/model";
import type { NamedHostTensors } from "@rlhf/compute";
import { FailedPreconditionError, InvalidArgumentError, check } from "@rlhf/errors";

/** Smallest magnitude that overflows float16 (rounds to infinity). */
const FLOAT16_OVERFLOW = 65520;

/** The loss and gradients of one batch. */
export interface PtxResult {
  /** Mean cross-entropy over every predicted token, nats per token, NOT multiplied by gamma. */
  loss: number;
  /** Predicted tokens the mean is over: sequences * (sequenceLength - 1). */
  tokens: number;
  /** d(gamma * loss)/d(parameter), GPT-2 names and shapes, in the model's parameter order. */
  gradients: NamedHostTensors;
}

/**
 * Forward and backward pass over `windows` (row-major [sequences, sequenceLength] ids), logits
 * divided by `temperature`. Frees every tensor it makes. Non-finite results (a diverged policy)
 * are FAILED_PRECONDITION rather than a stream the receiver would reject.
 */
export function ptxGradients(model: GPT2, windows: Int32Array, sequences: number, sequenceLength: number, gamma: number, temperature: number): PtxResult {
  const S = sequences;
  const L = sequenceLength;
  check(windows.length === S * L, "windows", `must hold ${S} x ${L} ids, got ${windows.length}`);
  check(Number.isFinite(gamma) && gamma > 0, "gamma", `must be a finite number > 0, got ${gamma}`);
  const params = model.parameters();
  const tokens = tf.tensor2d(windows, [S, L], "int32"); // [S, L]
  const lossMask = tf.ones([S, L - 1]) as tf.Tensor2D; // [S, L-1]: every next token is a target
  let loss: tf.Scalar | undefined;
  let grads: tf.NamedTensorMap = {};
  try {
    const out = tf.variableGrads(() => {
      // Kept past variableGrads' own tidy so the unscaled loss can be reported.
      loss = tf.keep(lmLoss(model, tokens, lossMask, { temperature }));
      return tf.mul(loss, gamma) as tf.Scalar;
    }, [...params.values()]);
    out.value.dispose();
    grads = out.grads;
    const gradients: NamedHostTensors = new Map();
    for (const [name, v] of params) {
      const g = grads[v.name]; // variableGrads keys by tf variable name; GPT-2 names on the wire
      // dataSync's array is ours: the tensor is disposed below and no backend reuses it.
      const data = g ? (g.dataSync() as Float32Array) : new Float32Array(v.size);
      gradients.set(name, { dtype: "float32", shape: [...v.shape], data });
    }
    const value = (loss as tf.Scalar).dataSync()[0];
    if (!Number.isFinite(value)) throw new FailedPreconditionError(`the policy's loss on this batch is ${value}: its weights have diverged`);
    for (const [name, t] of gradients) {
      const bad = firstNonFinite(t.data as Float32Array);
      if (bad >= 0) throw new FailedPreconditionError(`the gradient of ${name} holds ${t.data[bad]} at element ${bad}: the policy's weights have diverged`);
    }
    return { loss: value, tokens: S * (L - 1), gradients };
  } finally {
    tf.dispose([tokens, lossMask, ...Object.values(grads)]);
    loss?.dispose();
  }
}

/**
 * INVALID_ARGUMENT naming `dtype` if a gradient would overflow float16 on the wire (|v| >= 65520),
 * so the caller learns it before any message is sent and can ask for DTYPE_FLOAT32.
 */
export function checkFitsFloat16(gradients: NamedHostTensors, field = "dtype"): void {
  for (const [name, t] of gradients) {
    const d = t.data;
    for (let i = 0; i < d.length; i++) {
      if (Math.abs(d[i]) >= FLOAT16_OVERFLOW) {
        throw new InvalidArgumentError(field, `the gradient of ${name} holds ${d[i]} at element ${i}, beyond float16 (largest finite 65504): ask for DTYPE_FLOAT32 or a smaller gamma`);
      }
    }
  }
}

function firstNonFinite(d: Float32Array): number {
  for (let i = 0; i < d.length; i++) if (!Number.isFinite(d[i])) return i;
  return -1;
}
