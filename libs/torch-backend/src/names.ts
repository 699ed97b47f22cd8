/**
 * Names of the fused kernels the torch backend registers beside tfjs' own. @rlhf/compute's
 * fused ops dispatch them when the active backend has them (and fall back to plain tfjs ops
 * otherwise), and register their gradients.
 */
export const FUSED_KERNELS = {
  /** {x} -> GELU (tanh form) of x. */
  gelu: "RlhfGelu",
  /** {dy, x} -> dy * GELU'(x). */
  geluGrad: "RlhfGeluGrad",
  /** {dy, y}, attrs {dim} -> the gradient of y = softmax(logits, dim) with respect to logits. */
  softmaxGrad: "RlhfSoftmaxGrad",
  /**
   * {param, m, v, grad}, attrs {lr, beta1, beta2, epsilon, decay, bc1, bc2, gradScale} ->
   * [param', m', v']: one AdamW update (libs/model's arithmetic, in one call).
   */
  adamw: "RlhfAdamW",
  /** {logits [N, V], targets int32 [N]}, attrs {temperature} -> [N]: log softmax(logits / T) at each target. */
  targetLogProbs: "RlhfTargetLogProbs",
  /** {dy [N], logits, targets}, attrs {temperature} -> dlogits [N, V]. */
  targetLogProbsGrad: "RlhfTargetLogProbsGrad",
  /** inputs: a list of tensors -> float32 scalar: the sum of the squares of all their elements. */
  sumSquares: "RlhfSumSquares",
  /** {x, gamma, beta}, attrs {epsilon} -> LayerNorm of x over its last axis (biased variance). */
  layerNorm: "RlhfLayerNorm",
  /** {dy, x, gamma, beta}, attrs {epsilon} -> [dx, dgamma, dbeta]. */
  layerNormGrad: "RlhfLayerNormGrad",
  /**
   * {qkv [B, T, 3C]}, attrs {nHead} -> [y [B, T, C], probs [B, H, T, T]]: causal multi-head
   * self-attention (GPT-2's, from the c_attn output to the merged heads before c_proj).
   */
  causalAttention: "RlhfCausalAttention",
  /** {dy [B, T, C], qkv, probs}, attrs {nHead} -> dqkv [B, T, 3C]. */
  causalAttentionGrad: "RlhfCausalAttentionGrad",
} as const;
