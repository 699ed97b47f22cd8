/**
 * Test helper: a random GPT2 whose weights are scaled up (std ~0.02 * `gain`) so next-token
 * distributions are peaked, not nearly uniform: a wrong position id or mask then changes the
 * log-probabilities by far more than float rounding.
 */
import type { GPT2Config } from "../config";
import { GPT2, gpt2InitTensors } from "../gpt2";

export function sharpRandomModel(config: GPT2Config, seed: number, gain = 10): GPT2 {
  const tensors = gpt2InitTensors(config, seed);
  for (const [name, t] of tensors) {
    if (/ln_(1|2|f)\./.test(name) || name.endsWith(".bias")) continue;
    const d = t.data as Float32Array;
    for (let i = 0; i < d.length; i++) d[i] *= gain;
  }
  return GPT2.fromHostTensors(config, tensors, { copy: false });
}
