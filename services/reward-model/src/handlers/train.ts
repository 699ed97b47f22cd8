import { common, rewardModel } from "@rlhf/proto";
import { type CallContext, type SerialQueue, type Send, readHeaderFirst, yieldToEventLoop } from "@rlhf/grpc-kit";
import { countTokens } from "@rlhf/telemetry";
import { InvalidArgumentError, ResourceExhaustedError } from "@rlhf/errors";
import type { LrSchedule, TrainingSettings } from "@rlhf/model";
import type { RewardModel } from "../reward";
import type { RankedGroup } from "../ranking";
import type { RewardModelConfig } from "../config";
import { comparisonsFromProto } from "./comparisons";

/** Validates a TrainConfig (fields named `config.<proto field>`). */
export function trainSettingsFromProto(c: rewardModel.TrainConfig, cfg: RewardModelConfig): TrainingSettings {
  const bad = (f: string, msg: string) => new InvalidArgumentError(`config.${f}`, msg);
  if (!Number.isInteger(c.epochs) || c.epochs < 1 || c.epochs > 100) throw bad("epochs", `must be in 1..100, got ${c.epochs}`);
  if (c.batchSize < 1 || c.batchSize > cfg.maxBatchGroups) throw bad("batch_size", `must be in 1..${cfg.maxBatchGroups}, got ${c.batchSize}`);
  const o = c.optimizer;
  if (!o) throw bad("optimizer", "is required");
  const lr = o.learningRate;
  if (!Number.isFinite(lr) || lr <= 0 || lr > 1) throw bad("optimizer.learning_rate", `must be in (0, 1], got ${lr}`);
  const inOpen = (v: number, f: string) => {
    if (!Number.isFinite(v) || v < 0 || v >= 1) throw bad(`optimizer.${f}`, `must be in (0, 1) (or 0 for the default), got ${v}`);
  };
  inOpen(o.beta1, "beta1");
  inOpen(o.beta2, "beta2");
  if (!Number.isFinite(o.epsilon) || o.epsilon < 0) throw bad("optimizer.epsilon", `must be > 0 (or 0 for 1e-8), got ${o.epsilon}`);
  if (!Number.isFinite(o.weightDecay) || o.weightDecay < 0) throw bad("optimizer.weight_decay", `must be >= 0, got ${o.weightDecay}`);
  if (!Number.isFinite(o.maxGradNorm) || o.maxGradNorm < 0) throw bad("optimizer.max_grad_norm", `must be >= 0, got ${o.maxGradNorm}`);
  const cosine = c.schedule === common.LearningRateSchedule.LEARNING_RATE_SCHEDULE_COSINE;
  if (!cosine && c.schedule !== common.LearningRateSchedule.LEARNING_RATE_SCHEDULE_CONSTANT && c.schedule !== common.LearningRateSchedule.LEARNING_RATE_SCHEDULE_UNSPECIFIED) {
    throw bad("schedule", `unknown schedule ${c.schedule}`);
  }
  if (cosine && (!Number.isFinite(c.minLearningRate) || c.minLearningRate < 0 || c.minLearningRate > lr)) {
    throw bad("min_learning_rate", `must be in [0, learning_rate = ${lr}], got ${c.minLearningRate}`);
  }
  if (!Number.isSafeInteger(c.seed) || c.seed < 0) throw bad("seed", `must be a safe integer >= 0, got ${c.seed}`);
  // totalSteps is only known once the comparisons are in: filled by the handler.
  const schedule: LrSchedule = cosine
    ? { kind: "cosine", lr, warmupSteps: c.warmupSteps, totalSteps: 0, minLr: Math.min(c.minLearningRate, lr) }
    : { kind: "constant", lr, warmupSteps: c.warmupSteps };
  return {
    epochs: c.epochs,
    batchSize: c.batchSize,
    optimizer: { beta1: o.beta1 || 0.9, beta2: o.beta2 || 0.95, epsilon: o.epsilon || 1e-8, weightDecay: o.weightDecay },
    maxGradNorm: o.maxGradNorm,
    schedule,
    seed: c.seed,
    progressEverySteps: c.progressEverySteps || 1,
  };
}

/**
 * Train: buffers the config and every comparison until the half-close (validated as they come,
 * at most MAX_TRAIN_TOKENS), then trains on the compute queue, streaming progress and one done.
 */
export function trainHandler(rm: RewardModel, queue: SerialQueue, cfg: RewardModelConfig) {
  return async (reqs: AsyncIterable<rewardModel.TrainRequest>, send: Send<rewardModel.TrainResponse>, ctx: CallContext): Promise<void> => {
    const train: RankedGroup[] = [];
    const validation: RankedGroup[] = [];
    let tokens = 0;
    const settings = await readHeaderFirst(reqs, {
      header: "config",
      cases: "config, comparisons, validation_comparisons",
      onHeader: (part): TrainingSettings => trainSettingsFromProto(part.config, cfg),
      onPart: (part, field) => {
        const config = rm.require().config;
        const c =
          part.$case === "comparisons"
            ? comparisonsFromProto(part.comparisons, `${field}.comparisons`, config)
            : comparisonsFromProto(part.validationComparisons, `${field}.validation_comparisons`, config);
        tokens += c.tokens;
        if (tokens > cfg.maxTrainTokens) throw new ResourceExhaustedError(`Train buffered more than MAX_TRAIN_TOKENS = ${cfg.maxTrainTokens} tokens of comparisons`);
        (part.$case === "comparisons" ? train : validation).push(...c.groups);
      },
    });
    if (train.length === 0) throw new InvalidArgumentError("comparisons", "no training comparisons were sent");
    const s = settings;
    await queue.run(async () => {
      const usable = train.filter((g) => g.ranks.some((r) => r !== g.ranks[0])).length;
      const totalSteps = s.epochs * Math.ceil(usable / s.batchSize);
      if (s.schedule.kind === "cosine") s.schedule = { ...s.schedule, totalSteps };
      const started = Date.now();
      let lastAt = started;
      let tokensSince = 0;
      ctx.log.info({ groups: train.length, validationGroups: validation.length, epochs: s.epochs, batchSize: s.batchSize }, "training");
      const summary = await rm.train(
        train,
        validation,
        s,
        async (r) => {
          tokensSince += r.tokens;
          countTokens("reward_train", r.tokens);
          // Between steps, let health checks and cancellations through (send yields too).
          if (r.step % s.progressEverySteps !== 0 && r.step !== r.totalSteps) return yieldToEventLoop();
          const now = Date.now();
          const elapsed = now - started;
          const progress: rewardModel.TrainProgress = {
            epoch: r.epoch,
            epochs: s.epochs,
            step: r.step,
            totalSteps: r.totalSteps,
            loss: r.loss,
            accuracy: r.accuracy,
            learningRate: r.lr,
            gradNorm: r.gradNorm,
            tokensPerSecond: tokensSince / Math.max((now - lastAt) / 1000, 1e-3),
            validationLoss: r.validation?.loss,
            validationAccuracy: r.validation ? (r.validation.pairs > 0 ? r.validation.correct / r.validation.pairs : 0) : undefined,
            etaMs: Math.round((elapsed / r.step) * (r.totalSteps - r.step)),
            weights: rm.weights,
          };
          lastAt = now;
          tokensSince = 0;
          await send({ part: { $case: "progress", progress } });
        },
        ctx.signal,
      );
      const v = summary.validation;
      await send({
        part: {
          $case: "done",
          done: {
            weights: rm.weights,
            steps: summary.steps,
            groups: summary.groups,
            pairs: summary.pairs,
            finalLoss: summary.finalLoss,
            finalAccuracy: summary.finalAccuracy,
            validationLoss: v?.loss,
            validationAccuracy: v ? (v.pairs > 0 ? v.correct / v.pairs : 0) : undefined,
            elapsedMs: Date.now() - started,
          },
        },
      });
    }, ctx.signal);
  };
}
