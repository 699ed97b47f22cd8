/**
 * Supervised fine-tuning of the policy on demonstrations: the loss is the mean cross-entropy over
 * completion tokens only (a prompt of P tokens contributes no target; position P onwards does).
 * Fresh AdamW moments per call; batches are split into micro-batches whose gradients add up to
 * the batch's (each micro-batch's loss is normalised by the whole batch's target count).
 */
import * as tf from "@tensorflow/tfjs-core";
import { Trainer, lmLoss, makeLmBatch, microBatches, type GPT2, type LrSchedule, type TrainingSettings } from "@rlhf/model";
import { epochPermutation } from "@rlhf/random";
import { InvalidArgumentError } from "@rlhf/errors";
import { yieldToEventLoop } from "@rlhf/grpc-kit";

/** One demonstration: prompt + completion tokens, the completion starting at `promptLength`. */
export interface SftExample {
  tokens: Int32Array;
  promptLength: number;
}

/** Validated settings of one Sft call. */
export interface SftSettings extends TrainingSettings {
  temperature: number;
  microBatchTokens: number;
}

/** One optimiser step's report. */
export interface SftStep {
  epoch: number;
  step: number;
  totalSteps: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokens: number;
  /** Set on an epoch's last step when validation examples were given. */
  validationLoss?: number;
}

/** Summary of a finished (or cancelled) call. */
export interface SftSummary {
  steps: number;
  examples: number;
  completionTokens: number;
  finalLoss: number;
  validationLoss?: number;
}

const targetsOf = (e: SftExample) => e.tokens.length - e.promptLength;

/** Mean completion-token cross-entropy of `examples` (no gradient), nats per token. */
export function sftLoss(model: GPT2, examples: readonly SftExample[], temperature: number, microBatchTokens: number): number {
  let sum = 0;
  let count = 0;
  for (const g of microBatches(
    examples.map((e) => e.tokens.length),
    microBatchTokens,
  )) {
    const b = makeLmBatch(g.map((i) => ({ tokens: examples[i].tokens, lossStart: examples[i].promptLength })));
    const l = tf.tidy(() => lmLoss(model, b.tokens, b.lossMask, { temperature, normalizer: 1 }));
    sum += l.dataSync()[0];
    count += b.numTargets;
    tf.dispose([l, b.tokens, b.lossMask]);
  }
  return count > 0 ? sum / count : 0;
}

/**
 * Trains `model` in place. `onStep` runs after every optimiser step (it may await: back-pressure
 * of the progress stream) and bumps the caller's version; `signal` stops after a step.
 */
export async function trainSft(
  model: GPT2,
  train: readonly SftExample[],
  validation: readonly SftExample[],
  s: SftSettings,
  onStep: (r: SftStep) => Promise<void>,
  signal?: AbortSignal,
): Promise<SftSummary> {
  if (train.length === 0) throw new InvalidArgumentError("examples", "no training examples were sent");
  const stepsPerEpoch = Math.ceil(train.length / s.batchSize);
  const totalSteps = s.epochs * stepsPerEpoch;
  const schedule: LrSchedule = s.schedule.kind === "cosine" ? { ...s.schedule, totalSteps: Math.max(totalSteps, (s.schedule.warmupSteps ?? 0) + 1) } : s.schedule;
  const trainer = new Trainer(model.parameters(), { optimizer: s.optimizer, maxGradNorm: s.maxGradNorm, schedule });
  const summary: SftSummary = { steps: 0, examples: train.length, completionTokens: train.reduce((a, e) => a + targetsOf(e), 0), finalLoss: 0 };
  try {
    for (let epoch = 1; epoch <= s.epochs; epoch++) {
      const order = epochPermutation(train.length, s.seed, epoch);
      let epochLoss = 0;
      let epochTargets = 0;
      for (let k = 0; k < stepsPerEpoch; k++) {
        if (signal?.aborted) return summary;
        const batch = order.slice(k * s.batchSize, (k + 1) * s.batchSize).map((i) => train[i]);
        const targets = batch.reduce((a, e) => a + targetsOf(e), 0);
        let loss = 0;
        for (const [i, g] of microBatches(
          batch.map((e) => e.tokens.length),
          s.microBatchTokens,
        ).entries()) {
          // Health checks and cancellations get through between micro-batches too.
          if (i > 0) await yieldToEventLoop();
          const b = makeLmBatch(g.map((i) => ({ tokens: batch[i].tokens, lossStart: batch[i].promptLength })));
          try {
            loss += trainer.accumulate(() => lmLoss(model, b.tokens, b.lossMask, { temperature: s.temperature, normalizer: targets }));
          } finally {
            tf.dispose([b.tokens, b.lossMask]);
          }
        }
        const step = trainer.update();
        summary.steps++;
        epochLoss += loss * targets;
        epochTargets += targets;
        const report: SftStep = {
          epoch,
          step: summary.steps,
          totalSteps,
          loss,
          lr: step.lr,
          gradNorm: step.gradNorm,
          tokens: batch.reduce((a, e) => a + e.tokens.length, 0),
        };
        if (k === stepsPerEpoch - 1 && validation.length > 0) {
          report.validationLoss = sftLoss(model, validation, s.temperature, s.microBatchTokens);
          summary.validationLoss = report.validationLoss;
        }
        await onStep(report);
      }
      summary.finalLoss = epochTargets > 0 ? epochLoss / epochTargets : 0;
    }
    return summary;
  } finally {
    trainer.dispose();
  }
}
