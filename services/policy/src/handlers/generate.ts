import type { common, policy as policyPb } from "@rlhf/proto";
import { type CallContext, type SerialQueue, type Send, yieldToEventLoop } from "@rlhf/grpc-kit";
import { annotateActiveSpan, countTokens } from "@rlhf/telemetry";
import { tokenBatchFromProto, temperatureFromProto } from "@rlhf/tensor-transport";
import { InvalidArgumentError } from "@rlhf/errors";
import { generate, splitRows, type GeneratedSequence } from "@rlhf/model";
import type { PolicyState } from "../policy";
import type { PolicyConfig } from "../config";
import { defaultEos } from "./get-info";

/** Payload budget of one GenerateResponse: well inside the 4 MiB message limit. */
const MESSAGE_BUDGET_BYTES = 3 * 1024 * 1024;
/** Most samples per prompt. */
const MAX_SAMPLES_PER_PROMPT = 64;

interface GenerateSettings {
  k: number;
  temperature: number;
  topK: number;
  topP: number;
  maxNewTokens: number;
  seed: number;
  eos?: number;
}

/** Generate: K samples per prompt, streamed in groups of whole prompts under the message budget. */
export function generateHandler(state: PolicyState, queue: SerialQueue, cfg: PolicyConfig) {
  return async (req: policyPb.GenerateRequest, send: Send<policyPb.GenerateResponse>, ctx: CallContext): Promise<void> => {
    const result = await queue.run(async () => {
      const policy = state.policy();
      const { vocabSize: V, nPositions } = policy.config;
      const k = req.samplesPerPrompt || 1;
      if (k > MAX_SAMPLES_PER_PROMPT) throw new InvalidArgumentError("samples_per_prompt", `must be in 1..${MAX_SAMPLES_PER_PROMPT}, got ${k}`);
      if (req.maxNewTokens < 1 || req.maxNewTokens > cfg.maxNewTokens) throw new InvalidArgumentError("max_new_tokens", `must be in 1..${cfg.maxNewTokens}, got ${req.maxNewTokens}`);
      const maxPrompts = Math.floor(cfg.maxGenerateSequences / k);
      if (maxPrompts < 1) throw new InvalidArgumentError("samples_per_prompt", `${k} samples exceed MAX_GENERATE_SEQUENCES = ${cfg.maxGenerateSequences}`);
      const packed = tokenBatchFromProto(req.prompts, { vocabSize: V, nPositions, maxSequences: maxPrompts, maxTokens: maxPrompts * nPositions }, "prompts");
      packed.promptLengths?.forEach((p, i) => {
        if (p !== packed.lengths[i]) throw new InvalidArgumentError(`prompts.prompt_lengths[${i}]`, `must be empty or equal lengths[${i}] = ${packed.lengths[i]}, got ${p}`);
      });
      packed.lengths.forEach((L, i) => {
        if (L + req.maxNewTokens > nPositions) throw new InvalidArgumentError(`prompts.lengths[${i}]`, `${L} prompt tokens + max_new_tokens ${req.maxNewTokens} exceed n_positions ${nPositions}`);
      });
      const topP = req.topP === 0 ? 1 : req.topP;
      if (!Number.isFinite(topP) || topP <= 0 || topP > 1) throw new InvalidArgumentError("top_p", `must be in (0, 1] (or 0 for 1.0), got ${req.topP}`);
      if (req.topK > V) throw new InvalidArgumentError("top_k", `must be at most the vocabulary size ${V} (0 for no limit), got ${req.topK}`);
      if (!Number.isSafeInteger(req.seed) || req.seed < 0) throw new InvalidArgumentError("seed", `must be a safe integer >= 0, got ${req.seed}`);
      const eos = req.eosTokenId ?? defaultEos(state, cfg);
      if (!Number.isInteger(eos) || eos < 0 || eos >= V) throw new InvalidArgumentError(req.eosTokenId === undefined ? "eos_token_id (EOS_TOKEN_ID)" : "eos_token_id", `must be an id in 0..${V - 1}, got ${eos}`);
      const s: GenerateSettings = { k, temperature: temperatureFromProto(req.temperature), topK: req.topK, topP, maxNewTokens: req.maxNewTokens, seed: req.seed, eos: req.ignoreEos ? undefined : eos };
      const prompts = splitRows(packed.tokens, packed.lengths);
      ctx.log.debug({ prompts: prompts.length, samplesPerPrompt: k, maxNewTokens: s.maxNewTokens }, "generate");
      // Row r = prompt * K + sample; chunks of GENERATE_BATCH rows keep memory bounded and, with
      // rowOffset, draw exactly what one big batch would.
      const rows = prompts.flatMap((p) => Array.from({ length: k }, () => p));
      const out: GeneratedSequence[] = [];
      for (let start = 0; start < rows.length; start += cfg.generateBatch) {
        // Health checks and cancellations get through between chunks.
        if (start > 0) {
          await yieldToEventLoop();
          ctx.signal.throwIfAborted();
        }
        out.push(
          ...generate(policy, rows.slice(start, start + cfg.generateBatch), {
            maxNewTokens: s.maxNewTokens,
            temperature: s.temperature,
            topK: s.topK,
            topP: s.topP,
            eosId: s.eos,
            seed: s.seed,
            rowOffset: start,
          }),
        );
      }
      countTokens("generate", out.reduce((a, g) => a + g.tokens.length, 0));
      return { prompts, out, weights: state.policyWeights };
    }, ctx.signal);
    // Whole prompts per message, under the budget (a prompt's K samples are never split).
    const { prompts, out, weights } = result;
    // On the Generate server span: what this call did, beside its duration.
    annotateActiveSpan({ "rlhf.prompts": prompts.length, "rlhf.sequences": out.length, "rlhf.response_tokens": out.reduce((a, g) => a + g.tokens.length, 0), "rlhf.weights_version": weights.version });
    const k = out.length / prompts.length;
    let msg = empty(weights);
    let bytes = 0;
    for (let i = 0; i < prompts.length; i++) {
      const group = out.slice(i * k, (i + 1) * k);
      const groupBytes = group.reduce((a, g) => a + (prompts[i].length + g.tokens.length) * 5 + g.logProbs.length * 5 + 16, 0);
      if (msg.promptIndices.length > 0 && bytes + groupBytes > MESSAGE_BUDGET_BYTES) {
        await send(msg);
        msg = empty(weights);
        bytes = 0;
      }
      msg.promptIndices.push(i);
      const seqs = msg.sequences as common.TokenBatch;
      for (const g of group) {
        seqs.tokens.push(...prompts[i], ...g.tokens);
        seqs.lengths.push(prompts[i].length + g.tokens.length);
        seqs.promptLengths.push(prompts[i].length);
        msg.logprobs.push(...g.logProbs);
        msg.eos.push(g.finishReason === "eos");
      }
      bytes += groupBytes;
    }
    if (msg.promptIndices.length > 0) await send(msg);
  };
}

function empty(weights: common.WeightsRef): policyPb.GenerateResponse {
  return { promptIndices: [], sequences: { tokens: [], lengths: [], promptLengths: [] }, logprobs: [], eos: [], weights };
}
