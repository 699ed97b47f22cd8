/**
 * The reward model's domain: one ScalarHeadModel (GPT-2 trunk + "score.weight"/"score.bias")
 * and the WeightsRef naming it. Loads build the new model completely before the swap, so a
 * failed load changes nothing. Every change of the weights (optimiser step, Normalize) bumps the
 * version by one.
 */
import { join } from "node:path";
import { writeFile } from "node:fs/promises";
import * as tf from "@tensorflow/tfjs-core";
import { GPT2, ScalarHeadModel, SCORE_BIAS, SCORE_WEIGHT, Trainer, loadCheckpointTensors, microBatches, writeCheckpointFolder, type GPT2Config, type LrSchedule, type TrainingSettings } from "@rlhf/model";
import { epochPermutation } from "@rlhf/random";
import type { HostTensor, NamedHostTensors } from "@rlhf/compute";
import { InvalidArgumentError, readJsonFile, type PathRoots } from "@rlhf/errors";
import { yieldToEventLoop, type Logger } from "@rlhf/grpc-kit";
import { ModelSlot, resolveCheckpointDir, type LoadedRef, type PulledWeights } from "@rlhf/model-service";
import { groupSequences, groupedScores, pairStats, rankingLoss, rankingPairs, scoreSequences, type PairStats, type RankedGroup } from "./ranking";

/** model_id of every WeightsRef this service hands out. */
export const MODEL_ID = "reward-model";
/** Version file of a reward-model checkpoint. */
export const STATE_FILE = "state.json";

/** One optimiser step's report. */
export interface StepReport {
  epoch: number;
  step: number;
  totalSteps: number;
  loss: number;
  accuracy: number;
  lr: number;
  gradNorm: number;
  tokens: number;
  /** Set on an epoch's last step when validation groups were given. */
  validation?: PairStats;
}

/** Summary of a finished (or cancelled) Train call. */
export interface TrainSummary {
  steps: number;
  groups: number;
  pairs: number;
  finalLoss: number;
  finalAccuracy: number;
  validation?: PairStats;
}

/** A zero scalar head for width C: every score is 0 before training. */
function zeroHead(nEmbd: number): NamedHostTensors {
  return new Map<string, HostTensor>([
    [SCORE_WEIGHT, { dtype: "float32", shape: [nEmbd, 1], data: new Float32Array(nEmbd) }],
    [SCORE_BIAS, { dtype: "float32", shape: [1], data: new Float32Array(1) }],
  ]);
}

function withZeroHead(config: GPT2Config, trunk: NamedHostTensors): ScalarHeadModel {
  const body = new Map([...trunk].filter(([n]) => n !== SCORE_WEIGHT && n !== SCORE_BIAS));
  for (const [n, t] of zeroHead(config.nEmbd)) body.set(n, t);
  return ScalarHeadModel.fromHostTensors(config, body);
}

export class RewardModel {
  private readonly slot: ModelSlot<ScalarHeadModel>;
  /** True while a Train call is training. */
  training = false;

  constructor(
    log: Logger,
    private readonly opts: { checkpointRoots?: PathRoots; onLoaded?: () => void; microBatchTokens?: number },
  ) {
    this.slot = new ModelSlot(log, { modelId: MODEL_ID, missing: "no model is loaded: call LoadCheckpoint first (or start with CHECKPOINT_DIR / MODEL_DIR / INIT_PRESET)", onLoaded: opts.onLoaded });
  }

  get config(): Readonly<GPT2Config> | undefined {
    return this.slot.config;
  }

  get weights(): LoadedRef {
    return this.slot.ref;
  }

  /** The head's bias ("score.bias"); 0 without a model. */
  get bias(): number {
    const b = this.slot.model?.parameters().get(SCORE_BIAS);
    return b ? b.dataSync()[0] : 0;
  }

  /** The loaded model, or FAILED_PRECONDITION. */
  require(): ScalarHeadModel {
    return this.slot.require();
  }

  /**
   * `dir` made real and absolute; a request's folder (field in snake_case) must be inside
   * CHECKPOINT_ROOT, while CHECKPOINT_DIR / MODEL_DIR, set by the operator at start, are not confined.
   */
  resolveDir(dir: string, field: string): string {
    return resolveCheckpointDir(dir, field, this.opts.checkpointRoots);
  }

  /** A reward-model checkpoint (with score.*, state.json): restores head and version. */
  async loadCheckpoint(dir: string, field = "checkpoint_dir"): Promise<void> {
    const abs = this.resolveDir(dir, field);
    const { config, tensors } = await loadCheckpointTensors(abs);
    if (!tensors.has(SCORE_WEIGHT) || !tensors.has(SCORE_BIAS)) {
      throw new InvalidArgumentError(field, `"${dir}" has no score.weight / score.bias: not a reward-model checkpoint (use model_dir for a language model)`);
    }
    const version = await readVersion(abs);
    this.slot.swap(ScalarHeadModel.fromHostTensors(config, tensors), { modelId: MODEL_ID, version, source: abs });
  }

  /** A plain language-model folder: trunk kept, unembedding dropped, new zero head, version 0. */
  async loadModelDir(dir: string, field = "model_dir"): Promise<void> {
    const abs = this.resolveDir(dir, field);
    const { config, tensors } = await loadCheckpointTensors(abs);
    this.slot.swap(withZeroHead(config, tensors), { modelId: MODEL_ID, version: 0, source: abs });
  }

  /** A seeded random trunk with a zero head, version 0. */
  loadRandom(config: GPT2Config, seed: number): void {
    const lm = GPT2.random(config, seed, { trainable: false });
    try {
      this.slot.swap(withZeroHead(lm.config, lm.toHostTensors()), { modelId: MODEL_ID, version: 0, source: `random:${seed}` });
    } finally {
      lm.dispose();
    }
  }

  /** Trunk tensors (e.g. the policy's) with a new zero head, version 0. */
  loadTrunk(config: GPT2Config, tensors: NamedHostTensors, source: string): void {
    this.slot.swap(withZeroHead(config, tensors), { modelId: MODEL_ID, version: 0, source });
  }

  /** The policy's weights, pulled and verified, as the trunk (new zero head, version 0). */
  loadPulled(p: PulledWeights): void {
    this.loadTrunk(p.config, p.tensors, `${p.source}:${p.version}`);
  }

  /** Padded tokens per forward pass (MICRO_BATCH_TOKENS). */
  private get budget(): number {
    return this.opts.microBatchTokens ?? 8192;
  }

  /** r(x, y) per packed sequence, read at its last token; forwards of at most `budget` padded tokens. */
  score(seqs: readonly (readonly number[])[]): Float32Array {
    const model = this.require();
    const out = new Float32Array(seqs.length);
    let o = 0;
    for (const chunk of microBatches(
      seqs.map((x) => x.length),
      this.budget,
    )) {
      const s = scoreSequences(
        model,
        chunk.map((i) => seqs[i]),
      );
      out.set(s.dataSync(), o);
      s.dispose();
      o += chunk.length;
    }
    return out;
  }

  /**
   * Whole groups per forward pass, at most `budget` padded tokens each (a group larger than that
   * alone): the K responses of a prompt always share one forward.
   */
  private groupChunks(groups: readonly RankedGroup[]): RankedGroup[][] {
    const rows = groups.map((g) => groupSequences([g]));
    const chunks: RankedGroup[][] = [];
    let cur: RankedGroup[] = [];
    let n = 0;
    let longest = 0;
    groups.forEach((g, i) => {
      const L = Math.max(...rows[i].map((r) => r.length));
      const nextLongest = Math.max(longest, L);
      if (cur.length > 0 && (n + rows[i].length) * nextLongest > this.budget) {
        chunks.push(cur);
        cur = [];
        n = 0;
        longest = 0;
      }
      cur.push(g);
      n += rows[i].length;
      longest = Math.max(longest, L);
    });
    if (cur.length > 0) chunks.push(cur);
    return chunks;
  }

  /** Host scores of every response of `groups` (each response once) and their pairwise statistics. */
  evaluate(groups: readonly RankedGroup[]): PairStats {
    const model = this.require();
    if (groups.length === 0) return { groups: 0, pairs: 0, correct: 0, scoreTies: 0, loss: 0 };
    const all: number[] = [];
    for (const chunk of this.groupChunks(groups)) {
      const s = groupedScores(model, chunk);
      all.push(...s.dataSync());
      s.dispose();
    }
    return pairStats(all, groups);
  }

  /** Sets bias := bias + delta; the version increases by one. Returns the new bias. */
  addToBias(delta: number): number {
    const b = this.require().parameters().get(SCORE_BIAS) as tf.Variable;
    tf.tidy(() => b.assign(tf.add(b, delta)));
    this.slot.bumpVersion();
    return b.dataSync()[0];
  }

  /**
   * Trains on `groups` (groups without untied pairs dropped): per step one forward over all
   * responses of `batchSize` groups, the ranking loss, one AdamW update (version + 1).
   * `onStep` may await (back-pressure of the progress stream); `signal` stops after a step.
   */
  async train(
    all: readonly RankedGroup[],
    validation: readonly RankedGroup[],
    s: TrainingSettings,
    onStep: (r: StepReport) => Promise<void>,
    signal?: AbortSignal,
  ): Promise<TrainSummary> {
    const model = this.require();
    const groups = all.filter((g) => rankingPairs(g.ranks).length > 0);
    if (groups.length === 0) throw new InvalidArgumentError("comparisons", "no group has an untied pair: nothing to train on");
    const stepsPerEpoch = Math.ceil(groups.length / s.batchSize);
    const totalSteps = s.epochs * stepsPerEpoch;
    const schedule: LrSchedule = s.schedule.kind === "cosine" && s.schedule.totalSteps <= (s.schedule.warmupSteps ?? 0) ? { kind: "constant", lr: s.schedule.lr, warmupSteps: s.schedule.warmupSteps } : s.schedule;
    const trainer = new Trainer(model.parameters(), { optimizer: s.optimizer, maxGradNorm: s.maxGradNorm, schedule });
    this.training = true;
    const summary: TrainSummary = { steps: 0, groups: groups.length, pairs: 0, finalLoss: 0, finalAccuracy: 0 };
    try {
      for (let epoch = 1; epoch <= s.epochs; epoch++) {
        const order = epochPermutation(groups.length, s.seed, epoch);
        let epochLoss = 0;
        let epochGroups = 0;
        let epochPairs = 0;
        let epochCorrect = 0;
        for (let k = 0; k < stepsPerEpoch; k++) {
          if (signal?.aborted) return summary;
          const batch = order.slice(k * s.batchSize, (k + 1) * s.batchSize).map((i) => groups[i]);
          // Micro-batches of whole groups; each chunk's mean loss weighted by its share of the
          // batch's groups, so the summed gradients are the batch mean's.
          const host: number[] = [];
          let loss = 0;
          for (const [i, chunk] of this.groupChunks(batch).entries()) {
            // Health checks and cancellations get through between micro-batches too.
            if (i > 0) await yieldToEventLoop();
            loss += trainer.accumulate(() => {
              const scores = groupedScores(model, chunk);
              host.push(...scores.dataSync());
              return tf.mul(rankingLoss(scores, chunk), chunk.length / batch.length) as tf.Scalar;
            });
          }
          const stats = pairStats(host, batch);
          const step = trainer.update();
          this.slot.bumpVersion();
          summary.steps++;
          epochLoss += loss * batch.length;
          epochGroups += batch.length;
          epochPairs += stats.pairs;
          epochCorrect += stats.correct;
          const last = k === stepsPerEpoch - 1;
          const report: StepReport = {
            epoch,
            step: summary.steps,
            totalSteps,
            loss,
            accuracy: stats.pairs > 0 ? stats.correct / stats.pairs : 0,
            lr: step.lr,
            gradNorm: step.gradNorm,
            tokens: batch.reduce((a, g) => a + g.responses.reduce((b, r) => b + g.prompt.length + r.length, 0), 0),
          };
          if (last && validation.length > 0) {
            report.validation = this.evaluate(validation);
            summary.validation = report.validation;
          }
          await onStep(report);
        }
        summary.pairs = epochPairs;
        summary.finalLoss = epochLoss / epochGroups;
        summary.finalAccuracy = epochPairs > 0 ? epochCorrect / epochPairs : 0;
      }
      return summary;
    } finally {
      this.training = false;
      trainer.dispose();
    }
  }

  /** All tensors in host memory (one consistent snapshot). */
  toHostTensors(): NamedHostTensors {
    return this.require().toHostTensors();
  }

  /**
   * Writes config.json, model.safetensors and state.json to `dir` via a temporary sibling and a
   * rename. A folder holding this version already: nothing written (0 bytes); any other
   * non-empty folder: ALREADY_EXISTS.
   */
  async save(dir: string, field = "dir"): Promise<{ dir: string; bytes: number }> {
    const model = this.require();
    const abs = this.resolveDir(dir, field);
    const version = this.slot.ref.version;
    const bytes = await writeCheckpointFolder(
      abs,
      field,
      async (tmp) => {
        await model.save(tmp);
        await writeFile(join(tmp, STATE_FILE), JSON.stringify({ version, model_id: MODEL_ID }, null, 2) + "\n");
      },
      async (d) => (await readVersion(d)) === version,
      `version ${version}`,
    );
    return { dir: abs, bytes };
  }

  dispose(): void {
    this.slot.dispose();
  }
}

async function readVersion(dir: string): Promise<number> {
  const path = join(dir, STATE_FILE);
  const v = (await readJsonFile<{ version?: unknown }>(path, "no such file: not a reward-model checkpoint")).version;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) throw new InvalidArgumentError(path, `version must be an integer >= 0, got ${String(v)}`);
  return v;
}
