/**
 * Token sequences as the coordinator handles them (one array per sequence, the prompt first),
 * and their wire forms.
 */
import type { common, policy as policyPb } from "@rlhf/proto";
import type { KitClient } from "@rlhf/grpc-kit";

/** A prompt with one response: `tokens` = prompt + response, `promptLength` = P. */
export interface Sample {
  tokens: number[];
  promptLength: number;
  /** True if the response ends with EOS. */
  eos: boolean;
}

/** Response tokens of a sample. */
export const responseOf = (s: Sample): number[] => s.tokens.slice(s.promptLength);

/** TokenBatch of samples (prompt_lengths set). */
export function batchOf(samples: readonly Sample[]): common.TokenBatch {
  return { tokens: samples.flatMap((s) => s.tokens), lengths: samples.map((s) => s.tokens.length), promptLengths: samples.map((s) => s.promptLength) };
}

/** TokenBatch of prompts alone. */
export function promptBatch(prompts: readonly number[][]): common.TokenBatch {
  return { tokens: prompts.flat(), lengths: prompts.map((p) => p.length), promptLengths: [] };
}

/** Generation settings of one Generate call. */
export interface GenerateSettings {
  samplesPerPrompt: number;
  temperature: number;
  maxNewTokens: number;
  seed: number;
  topK?: number;
}

/**
 * K samples per prompt from the policy, in prompt order (sample k of prompt i at i*K + k), with
 * the sampling log-probs in the response-token layout, in that order too.
 */
export async function generateSamples(
  policy: KitClient<policyPb.PolicyServiceClient>,
  prompts: readonly number[][],
  s: GenerateSettings,
  signal?: AbortSignal,
): Promise<{ samples: Sample[]; logprobs: number[][]; version: number }> {
  const K = s.samplesPerPrompt;
  const samples: Sample[] = new Array(prompts.length * K);
  const logprobs: number[][] = new Array(prompts.length * K);
  let version = 0;
  const stream = policy.serverStream(
    "generate",
    { prompts: promptBatch(prompts), samplesPerPrompt: K, temperature: s.temperature, topK: s.topK ?? 0, topP: 0, maxNewTokens: s.maxNewTokens, seed: s.seed, ignoreEos: false },
    { signal },
  );
  for await (const msg of stream as AsyncIterable<policyPb.GenerateResponse>) {
    version = msg.weights?.version ?? version;
    const b = msg.sequences as common.TokenBatch;
    let o = 0;
    let lo = 0;
    b.lengths.forEach((L, j) => {
      const prompt = msg.promptIndices[Math.floor(j / K)];
      const P = b.promptLengths[j];
      const idx = prompt * K + (j % K);
      samples[idx] = { tokens: b.tokens.slice(o, o + L), promptLength: P, eos: msg.eos[j] };
      logprobs[idx] = msg.logprobs.slice(lo, lo + L - P);
      o += L;
      lo += L - P;
    });
  }
  return { samples, logprobs, version };
}
