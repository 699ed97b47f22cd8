import type { policy as policyPb } from "@rlhf/proto";
import type { CallContext, SerialQueue } from "@rlhf/grpc-kit";
import { annotateActiveSpan, countTokens } from "@rlhf/telemetry";
import { temperatureFromProto } from "@rlhf/tensor-transport";
import type { PolicyState } from "../policy";
import type { PolicyConfig } from "../config";
import { evaluateSequences, responseLengths } from "../compute";
import { seqsFromProto } from "./common";

/** Evaluate: per-token log-probabilities of the policy and values of the critic. */
export function evaluateHandler(state: PolicyState, queue: SerialQueue, cfg: PolicyConfig) {
  return async (req: policyPb.EvaluateRequest, ctx: CallContext): Promise<policyPb.EvaluateResponse> => {
    const temperature = temperatureFromProto(req.temperature);
    return queue.run(() => {
      const policy = state.policy();
      const critic = req.skipValues ? undefined : state.critic();
      const seqs = seqsFromProto(req.sequences, "sequences", policy.config, { maxSequences: cfg.maxBatchSequences, maxTokens: cfg.maxBatchTokens }, false);
      ctx.log.debug({ sequences: seqs.lengths.length, tokens: seqs.tokens.length }, "evaluate");
      const r = evaluateSequences(policy, critic, seqs, temperature, cfg.microBatchTokens);
      countTokens("evaluate", seqs.tokens.length);
      annotateActiveSpan({ "rlhf.sequences": seqs.lengths.length, "rlhf.tokens": seqs.tokens.length, "rlhf.weights_version": state.policyWeights.version });
      return {
        logprobs: Array.from(r.logprobs),
        values: r.values ? Array.from(r.values) : [],
        lengths: responseLengths(seqs),
        policyWeights: state.policyWeights,
        criticWeights: critic ? state.criticWeights : undefined,
      };
    }, ctx.signal);
  };
}
