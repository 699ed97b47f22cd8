import { common, type policy as policyPb } from "@rlhf/proto";
import { type CallContext, type SerialQueue, type Send, readHeaderFirst, yieldToEventLoop } from "@rlhf/grpc-kit";
import { countTokens } from "@rlhf/telemetry";
import { temperatureFromProto } from "@rlhf/tensor-transport";
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, ResourceExhaustedError } from "@rlhf/errors";
import { buildInstructionDatasets, sftRecords, type InstructionDatasets } from "@rlhf/data";
import { splitRows, type LrSchedule, type Tokenizer, type GPT2Config } from "@rlhf/model";
import type { PolicyState } from "../policy";
import type { PolicyConfig } from "../config";
import { trainSft, type SftExample, type SftSettings } from "../sft";
import { optimizerFromProto, runIdFromProto, seqsFromProto } from "./common";

/** The built-in instruction dataset a DatasetRef may name. */
export const BUILTIN_DATASET = "brown-instructions";
const SPLITS = ["sft", "rm", "ppo", "eval"] as const;
let builtin: InstructionDatasets | undefined;

/**
 * Demonstrations (prompt, gold completion) of a built-in split, tokenised with the policy's
 * tokenizer, EOS appended to each completion. Examples longer than n_positions are left out.
 */
export function builtinExamples(ref: common.DatasetRef, field: string, tok: Tokenizer, config: Readonly<GPT2Config>): SftExample[] {
  if (ref.name !== BUILTIN_DATASET) throw new NotFoundError(`${field}.name`, `unknown dataset ${JSON.stringify(ref.name)}; known: ${BUILTIN_DATASET}`);
  const split = SPLITS.find((s) => s === ref.split);
  if (!split) throw new NotFoundError(`${field}.split`, `unknown split ${JSON.stringify(ref.split)}; known: ${SPLITS.join(", ")}`);
  builtin ??= buildInstructionDatasets({ seed: 0 });
  const records = sftRecords(builtin[split]);
  const chosen = ref.count > 0 ? records.slice(0, ref.count) : records;
  const out: SftExample[] = [];
  for (const r of chosen) {
    const prompt = tok.encode(r.prompt);
    const completion = [...tok.encode(r.completion), tok.eosId];
    if (prompt.length < 1 || prompt.length + completion.length > config.nPositions) continue;
    out.push({ tokens: Int32Array.from([...prompt, ...completion]), promptLength: prompt.length });
  }
  if (out.length === 0) throw new FailedPreconditionError(`${field}: none of the ${chosen.length} examples fits n_positions ${config.nPositions}`);
  return out;
}

/** Validates an SftConfig (fields named `config.<proto field>`). */
function settingsFromProto(c: policyPb.SftConfig, cfg: PolicyConfig): SftSettings {
  const bad = (f: string, msg: string) => new InvalidArgumentError(`config.${f}`, msg);
  if (c.epochs < 1 || c.epochs > 1000) throw bad("epochs", `must be in 1..1000, got ${c.epochs}`);
  if (c.batchSize < 1 || c.batchSize > cfg.maxBatchSequences) throw bad("batch_size", `must be in 1..${cfg.maxBatchSequences}, got ${c.batchSize}`);
  const o = optimizerFromProto(c.optimizer, "config.optimizer");
  const cosine = c.schedule === common.LearningRateSchedule.LEARNING_RATE_SCHEDULE_COSINE;
  if (!cosine && c.schedule !== common.LearningRateSchedule.LEARNING_RATE_SCHEDULE_CONSTANT && c.schedule !== common.LearningRateSchedule.LEARNING_RATE_SCHEDULE_UNSPECIFIED) {
    throw bad("schedule", `unknown schedule ${c.schedule}`);
  }
  if (cosine && (!Number.isFinite(c.minLearningRate) || c.minLearningRate < 0 || c.minLearningRate > o.lr)) {
    throw bad("min_learning_rate", `must be in [0, learning_rate = ${o.lr}], got ${c.minLearningRate}`);
  }
  if (!Number.isSafeInteger(c.seed) || c.seed < 0) throw bad("seed", `must be a safe integer >= 0, got ${c.seed}`);
  const schedule: LrSchedule = cosine ? { kind: "cosine", lr: o.lr, warmupSteps: c.warmupSteps, totalSteps: 0, minLr: c.minLearningRate } : { kind: "constant", lr: o.lr, warmupSteps: c.warmupSteps };
  return {
    epochs: c.epochs,
    batchSize: c.batchSize,
    optimizer: o.adam,
    maxGradNorm: o.maxGradNorm,
    schedule,
    seed: c.seed,
    progressEverySteps: c.progressEverySteps || 1,
    temperature: temperatureFromProto(c.temperature, "config.temperature"),
    microBatchTokens: cfg.microBatchTokens,
  };
}

function examplesOf(batch: common.TokenBatch | undefined, field: string, state: PolicyState, cfg: PolicyConfig): SftExample[] {
  const seqs = seqsFromProto(batch, field, state.policy().config, { maxSequences: Number.MAX_SAFE_INTEGER, maxTokens: cfg.maxSftTokens }, true);
  return splitRows(seqs.tokens, seqs.lengths).map((tokens, i) => ({ tokens: tokens.slice(), promptLength: seqs.promptLengths[i] }));
}

/**
 * Sft: buffers the config and the examples until the half-close (at most MAX_SFT_TOKENS), then
 * trains on the queue, streaming progress and one done. Every optimiser step bumps the version.
 */
export function sftHandler(state: PolicyState, queue: SerialQueue, cfg: PolicyConfig) {
  return async (reqs: AsyncIterable<policyPb.SftRequest>, send: Send<policyPb.SftResponse>, ctx: CallContext): Promise<void> => {
    let train: SftExample[] = [];
    let validation: SftExample[] = [];
    let tokens = 0;
    const { c, settings } = await readHeaderFirst(reqs, {
      header: "config",
      cases: "config, examples, validation_examples",
      onHeader: (part) => ({ c: part.config, settings: settingsFromProto(part.config, cfg) }),
      onPart: (part, field, { c }) => {
        const name = part.$case === "examples" ? "examples" : "validation_examples";
        if (part.$case === "examples" && c.dataset) throw new InvalidArgumentError(`${field}.examples`, "config.dataset is set: the stream must carry no examples");
        if (part.$case === "validationExamples" && c.validationDataset) throw new InvalidArgumentError(`${field}.validation_examples`, "config.validation_dataset is set: the stream must carry no validation examples");
        const ex = examplesOf(part.$case === "examples" ? part.examples : part.validationExamples, `${field}.${name}`, state, cfg);
        tokens += ex.reduce((a, e) => a + e.tokens.length, 0);
        if (tokens > cfg.maxSftTokens) throw new ResourceExhaustedError(`Sft buffered more than MAX_SFT_TOKENS = ${cfg.maxSftTokens} tokens of examples`);
        (part.$case === "examples" ? train : validation).push(...ex);
      },
    });
    const runId = runIdFromProto(c.runId, "config.run_id");
    const conf = c;
    const s = settings;
    await queue.run(async () => {
      const policy = state.policy();
      const tok = state.tokenizer as Tokenizer;
      if (conf.dataset) train = builtinExamples(conf.dataset, "config.dataset", tok, policy.config);
      if (conf.validationDataset) validation = builtinExamples(conf.validationDataset, "config.validation_dataset", tok, policy.config);
      if (train.length === 0) throw new InvalidArgumentError("examples", "no training examples were sent");
      const started = Date.now();
      let lastAt = started;
      let tokensSince = 0;
      ctx.log.info({ examples: train.length, validationExamples: validation.length, epochs: s.epochs, batchSize: s.batchSize }, "sft");
      state.training = true;
      try {
        const summary = await trainSft(
          policy,
          train,
          validation,
          s,
          async (r) => {
            state.bumpPolicy();
            countTokens("sft", r.tokens);
            tokensSince += r.tokens;
            // Between steps, let health checks and cancellations through (send yields too).
            if (r.step % s.progressEverySteps !== 0 && r.step !== r.totalSteps && r.validationLoss === undefined) return yieldToEventLoop();
            const now = Date.now();
            const progress: policyPb.SftProgress = {
              epoch: r.epoch,
              epochs: s.epochs,
              step: r.step,
              totalSteps: r.totalSteps,
              loss: r.loss,
              learningRate: r.lr,
              gradNorm: r.gradNorm,
              tokensPerSecond: tokensSince / Math.max((now - lastAt) / 1000, 1e-3),
              validationLoss: r.validationLoss,
              etaMs: Math.round(((now - started) / r.step) * (r.totalSteps - r.step)),
              weights: state.policyWeights,
            };
            lastAt = now;
            tokensSince = 0;
            await send({ part: { $case: "progress", progress } });
          },
          ctx.signal,
        );
        state.weightsChanged("sft", runId);
        await send({
          part: {
            $case: "done",
            done: {
              weights: state.policyWeights,
              steps: summary.steps,
              examples: summary.examples,
              completionTokens: summary.completionTokens,
              finalLoss: summary.finalLoss,
              validationLoss: summary.validationLoss,
              elapsedMs: Date.now() - started,
            },
          },
        });
      } finally {
        state.training = false;
      }
    }, ctx.signal);
  };
}
