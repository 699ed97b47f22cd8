/**
 * Fused ops: one kernel where the active backend has one (the torch backend registers
 * @rlhf/torch-backend's FUSED_KERNELS), plain tfjs ops otherwise. On backends without the fused
 * kernels the ops below compute exactly what they computed before they existed (same ops, same
 * order), so wasm and cpu results do not change; the fused kernels agree with them to float32
 * rounding (tested in libs/torch-backend's equality tests).
 *
 * Why: tfjs writes GELU's and softmax's gradients as 6-10 element-wise ops over the largest
 * activations of a block ([B, T, 4C] and [B, H, T, T]); on the torch backend those took about a
 * third of a training step of the demo policy, against two single-pass ATen kernels.
 */
import * as tf from "@tensorflow/tfjs-core";
import { FUSED_KERNELS } from "@rlhf/torch-backend/dist/names";

export { FUSED_KERNELS };

/** True when the active backend registers kernel `name`. */
export function backendHasKernel(name: string): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}

/** GELU, tanh form ("gelu_new"): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). Differentiable. */
export function gelu<T extends tf.Tensor>(x: T): T {
  if (backendHasKernel(FUSED_KERNELS.gelu)) return tf.engine().runKernel(FUSED_KERNELS.gelu, { x }) as T;
  return tf.tidy(() => {
    const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.pow(x, 3))));
    return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner))) as T;
  });
}

/**
 * LayerNorm over the last axis (biased variance, like PyTorch): (x - mean) / sqrt(var + eps) *
 * gamma + beta. x [..., C], gamma and beta [C]. Differentiable.
 */
export function layerNorm<T extends tf.Tensor>(x: T, gamma: tf.Tensor1D, beta: tf.Tensor1D, epsilon: number): T {
  if (backendHasKernel(FUSED_KERNELS.layerNorm)) {
    return tf.engine().runKernel(FUSED_KERNELS.layerNorm, { x, gamma, beta }, { epsilon } as unknown as tf.NamedAttrMap) as T;
  }
  return tf.tidy(() => {
    const { mean, variance } = tf.moments(x, -1, true); // [..., 1] each
    const xhat = tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, epsilon))); // [..., C]
    return tf.add(tf.mul(xhat, gamma), beta) as T; // [..., C]
  });
}

/** [T, T] additive mask: 0 where key s <= query t, a large negative number above the diagonal. */
function causalMask(T: number): tf.Tensor2D {
  const m = new Float32Array(T * T);
  for (let t = 0; t < T; t++) for (let s = t + 1; s < T; s++) m[t * T + s] = -1e9;
  return tf.tensor2d(m, [T, T]);
}

/**
 * GPT-2's causal multi-head self-attention between its two projections: `qkv` [B, T, 3C] (the
 * c_attn output: q, k, v side by side) -> per-head softmax(q k^T / sqrt(D) + causal mask) v,
 * heads merged: [B, T, C]. Differentiable.
 */
export function causalSelfAttention(qkv: tf.Tensor3D, nHead: number): tf.Tensor3D {
  if (backendHasKernel(FUSED_KERNELS.causalAttention)) {
    const [y, probs] = tf.engine().runKernel(FUSED_KERNELS.causalAttention, { qkv }, { nHead } as unknown as tf.NamedAttrMap) as tf.Tensor[];
    probs.dispose(); // the tape saved its own copy for the gradient
    return y as tf.Tensor3D;
  }
  const [B, T, C3] = qkv.shape;
  const C = C3 / 3;
  const H = nHead;
  const D = C / H;
  return tf.tidy(() => {
    const [q, k, v] = tf.split(qkv, 3, 2) as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D]; // [B, T, C] each
    const heads = (t: tf.Tensor3D): tf.Tensor4D => tf.transpose(tf.reshape(t, [B, T, H, D]), [0, 2, 1, 3]); // [B, H, T, D]
    const scores = tf.mul(tf.matMul(heads(q), heads(k), false, true), 1 / Math.sqrt(D)); // [B, H, T, T]
    const att = tf.softmax(tf.add(scores, causalMask(T)), -1); // [B, H, T, T]
    const y = tf.matMul(att, heads(v)); // [B, H, T, D]
    return tf.reshape<tf.Rank.R3>(tf.transpose(y, [0, 2, 1, 3]), [B, T, C]); // [B, T, C]
  });
}

/**
 * log p(target) under softmax(logits / temperature), row by row: logits [N, V], int32 targets [N]
 * -> [N]. Differentiable with respect to the logits. Without the fused kernel: z - logsumexp(z)
 * at the target, z = logits / T, written out (max, exp, sum, log) and the target picked with a
 * flat 1-D gather, as libs/model always computed it (on wasm that path is ~5x faster than
 * tf.logSoftmax + a one-hot mask for a GPT-2 sized vocabulary).
 */
export function targetLogProbs(logits: tf.Tensor2D, targets: tf.Tensor1D, temperature: number): tf.Tensor1D {
  if (backendHasKernel(FUSED_KERNELS.targetLogProbs)) {
    return tf.engine().runKernel(FUSED_KERNELS.targetLogProbs, { logits, targets }, { temperature } as unknown as tf.NamedAttrMap) as tf.Tensor1D;
  }
  const [N, V] = logits.shape;
  return tf.tidy(() => {
    const z = temperature === 1 ? logits : tf.div(logits, temperature); // [N, V]
    const m = tf.max(z, -1, true); // [N, 1]
    const lse = tf.add(tf.log(tf.sum(tf.exp(tf.sub(z, m)), -1)), tf.reshape(m, [N])); // [N]
    const flatIdx = tf.add(tf.mul(tf.range(0, N, 1, "int32"), tf.scalar(V, "int32")), targets); // [N]
    const picked = tf.gather(tf.reshape(z, [N * V]), flatIdx); // [N]
    return tf.sub(picked, lse) as tf.Tensor1D; // [N]
  });
}

/**
 * The sum of the squares of every element of `tensors` (a float32 scalar): the squared global
 * norm of a set of gradients. Not differentiable.
 */
export function sumOfSquares(tensors: readonly tf.Tensor[]): tf.Scalar {
  if (backendHasKernel(FUSED_KERNELS.sumSquares)) return tf.engine().runKernel(FUSED_KERNELS.sumSquares, tensors as unknown as tf.NamedTensorMap) as tf.Scalar;
  return tf.tidy(() => tf.addN(tensors.map((g) => tf.sum(tf.square(g)))) as tf.Scalar);
}

const layerNormGradConfig: tf.GradConfig = {
  kernelName: FUSED_KERNELS.layerNorm,
  inputsToSave: ["x", "gamma", "beta"],
  gradFunc: (dy, saved, attrs) => {
    const [x, gamma, beta] = saved;
    // One kernel gives all three gradients. tfjs asks for them one by one, each inside a tidy of
    // its own that would dispose the other two, so run it here (the backward pass's own scope).
    const [dx, dgamma, dbeta] = tf.engine().runKernel(FUSED_KERNELS.layerNormGrad, { dy: dy as tf.Tensor, x, gamma, beta }, attrs as tf.NamedAttrMap) as tf.Tensor[];
    return { x: () => dx, gamma: () => dgamma, beta: () => dbeta };
  },
};

const causalAttentionGradConfig: tf.GradConfig = {
  kernelName: FUSED_KERNELS.causalAttention,
  inputsToSave: ["qkv"],
  outputsToSave: [false, true],
  gradFunc: (dys, saved, attrs) => {
    const [qkv, probs] = saved;
    // dys: [dy of y, dy of probs]; probs is an internal output, nothing flows back through it.
    const dy = (dys as tf.Tensor[])[0];
    return { qkv: () => tf.engine().runKernel(FUSED_KERNELS.causalAttentionGrad, { dy, qkv, probs }, attrs as tf.NamedAttrMap) as tf.Tensor };
  },
};

const targetLogProbsGradConfig: tf.GradConfig = {
  kernelName: FUSED_KERNELS.targetLogProbs,
  inputsToSave: ["logits", "targets"],
  gradFunc: (dy, saved, attrs) => {
    const [logits, targets] = saved;
    return {
      logits: () => tf.engine().runKernel(FUSED_KERNELS.targetLogProbsGrad, { dy: dy as tf.Tensor, logits, targets }, attrs as tf.NamedAttrMap) as tf.Tensor,
      // Integer input: never on a differentiable path; present so the tape finds every input.
      targets: () => tf.zerosLike(targets),
    };
  },
};

const geluGradConfig: tf.GradConfig = {
  kernelName: FUSED_KERNELS.gelu,
  inputsToSave: ["x"],
  gradFunc: (dy, saved) => {
    const [x] = saved;
    return { x: () => tf.engine().runKernel(FUSED_KERNELS.geluGrad, { dy: dy as tf.Tensor, x }) as tf.Tensor };
  },
};

/**
 * tfjs' own gradient of `Softmax` (dy y - sum(dy y) y, over `dim`), dispatched to the fused
 * kernel where the backend has it. Same maths and, without the kernel, the same ops as tfjs 4.22's.
 */
const softmaxGradConfig: tf.GradConfig = {
  kernelName: tf.Softmax,
  outputsToSave: [true],
  gradFunc: (dy, saved, attrs) => {
    const [y] = saved;
    const { dim } = attrs as unknown as tf.SoftmaxAttrs;
    const g = dy as tf.Tensor;
    if (backendHasKernel(FUSED_KERNELS.softmaxGrad)) {
      return { logits: () => tf.engine().runKernel(FUSED_KERNELS.softmaxGrad, { dy: g, y }, { dim } as unknown as tf.NamedAttrMap) as tf.Tensor };
    }
    const dyTimesY = tf.mul(g, y);
    return { logits: () => tf.sub(dyTimesY, tf.mul(tf.sum(dyTimesY, [dim], true), y)) };
  },
};

/** Gradients of the fused ops (global, backend-independent); `registerMissingGradients` registers them. */
export const FUSED_GRADIENTS: readonly tf.GradConfig[] = [geluGradConfig, softmaxGradConfig, layerNormGradConfig, causalAttentionGradConfig, targetLogProbsGradConfig];
