/**
 * The recipe's gateway to the four model services: the only recipe file that imports the
 * generated proto code. The stages and the PPO iteration call it with domain types (samples,
 * examples, ranked groups, settings); it builds the requests, cuts big inputs into messages under
 * the 4 MiB limit, relays streams (pretraining gradients straight into PpoUpdate), converts
 * layouts (the reference's L-1 log-probs into the response-token layout) and passes the run's
 * cancellation signal and id (metadata x-rlhf-run-id) with every call.
 */
import { POLICY_MODEL_ID, common, pretrainMix, type policy as policyPb, type referenceModel, type rewardModel } from "@rlhf/proto";
import { FailedPreconditionError } from "@rlhf/errors";
import type * as grpc from "@grpc/grpc-js";
import { forRun, type KitClient, type ServiceClient } from "@rlhf/grpc-kit";
import type { BatchProgress, ComparisonToRank, LabeledRanking, LabelingClient } from "@rlhf/labeling-client";
import { splitRows, type GPT2Config } from "@rlhf/model/tokens";
import { modelConfigToProto } from "@rlhf/tensor-transport";
import type { Attributes } from "@rlhf/telemetry";
import type { AdamSettings, Example, GenerateSettings, PpoMinibatch, PtxRequest, RankedSamples, Sample, Saved, StepProgress, TextCorpus, TrainSettings, WeightsRef } from "./records";
import { phase } from "./trace";

/** The clients of the four model services (a ServiceClient is a KitClient or a ReplicaSet: ../replicas.ts). */
export interface Clients {
  policy: KitClient<policyPb.PolicyServiceClient>;
  rewardModel: ServiceClient<rewardModel.RewardModelServiceClient>;
  reference: ServiceClient<referenceModel.ReferenceModelServiceClient>;
  pretrainMix: ServiceClient<pretrainMix.PretrainMixServiceClient>;
  /** The labeling service (LABELING_ADDR), for runs with `rankings.source` "labeling"; absent when unset. */
  labeling?: LabelingClient;
}

const adam = (a: AdamSettings): common.OptimizerConfig => ({ learningRate: a.learningRate, beta1: 0.9, beta2: 0.95, epsilon: 1e-8, weightDecay: a.weightDecay, maxGradNorm: a.maxGradNorm });
const schedule = (s: TrainSettings["schedule"]) => (s === "cosine" ? common.LearningRateSchedule.LEARNING_RATE_SCHEDULE_COSINE : common.LearningRateSchedule.LEARNING_RATE_SCHEDULE_CONSTANT);
const tokenBatch = (seqs: readonly number[][], promptLengths: readonly number[] = []): common.TokenBatch => ({ tokens: seqs.flat(), lengths: seqs.map((s) => s.length), promptLengths: [...promptLengths] });
const sampleBatch = (samples: readonly Sample[]) => tokenBatch(samples.map((s) => s.tokens), samples.map((s) => s.promptLength));
const group = (g: RankedSamples): rewardModel.ComparisonGroup => ({ prompt: g.prompt, responses: tokenBatch(g.responses), ranks: g.ranks });
const refs = (...w: (common.WeightsRef | undefined)[]): WeightsRef[] => w.filter((x): x is common.WeightsRef => Boolean(x));
/** Training calls can take hours; the run's signal cancels them. */
const TRAIN_DEADLINE_MS = 24 * 3600_000;

/** The services as the recipe uses them, for one run (its cancellation signal and id). */
export type Gateway = ReturnType<typeof createGateway>;

export function createGateway(clients: Clients, signal: AbortSignal, runId?: string) {
  const opts = { signal };
  // Every call names the run (metadata x-rlhf-run-id): the model services serve one run at a time.
  const named = <T extends { close(): void }>(c: T): Pick<T, keyof ServiceClient<grpc.Client> & keyof T> => (runId ? forRun(c, runId) : c);
  const pol = named(clients.policy);
  const rm = named(clients.rewardModel);
  const ref = named(clients.reference);
  const pm = named(clients.pretrainMix);
  const lab = clients.labeling;
  const loadPolicy = async (source: policyPb.LoadCheckpointRequest["source"]) => (await pol.unary("loadCheckpoint", { source, runId }, opts)).policyWeights?.version ?? 0;
  return {
    policy: {
      /** Loads a policy checkpoint (policy, critic, optimisers); returns the policy's weights version. */
      loadCheckpoint: (dir: string) => loadPolicy({ $case: "checkpointDir", checkpointDir: dir }),
      /** Loads a plain language-model folder as the policy. */
      loadModelDir: (dir: string) => loadPolicy({ $case: "modelDir", modelDir: dir }),
      /** A seeded random policy of this shape. */
      loadRandom: (config: GPT2Config, seed: number) => loadPolicy({ $case: "randomInit", randomInit: { config: modelConfigToProto(config), seed } }),
      /** The critic from a reward-model checkpoint folder. */
      initCritic: async (dir: string) => void (await pol.unary("initCritic", { source: { $case: "checkpointDir", checkpointDir: dir } }, opts)),
      save: async (dir: string): Promise<Saved> => {
        const r = await pol.unary("saveCheckpoint", { dir }, opts);
        return { dir: r.dir, weights: refs(r.policyWeights, r.criticWeights), bytes: r.bytesWritten };
      },
      /** The compute backend's name and what the figures depend on ("" where the service does not say). */
      backend: async (): Promise<{ name: string; detail: string }> => {
        const r = await pol.unary("getInfo", {}, opts);
        return { name: r.backend, detail: r.backendDetail };
      },
      /** Sft on `examples` (streamed a few hundred per message); `onProgress` gets every progress message. */
      sft: async (s: TrainSettings, examples: readonly Example[], onProgress: (p: StepProgress) => void): Promise<void> => {
        const call = pol.bidi("sft", { signal, deadlineMs: TRAIN_DEADLINE_MS });
        const { optimizer, schedule: sched, ...rest } = s;
        call.write({ part: { $case: "config", config: { ...rest, optimizer: adam(optimizer), schedule: schedule(sched), dataset: undefined, validationDataset: undefined, temperature: 0, runId } } });
        for (let i = 0; i < examples.length; i += 256) {
          const part = examples.slice(i, i + 256);
          call.write({ part: { $case: "examples", examples: tokenBatch(part.map((e) => e.tokens), part.map((e) => e.promptLength)) } });
        }
        call.end();
        let done = false;
        for await (const m of call as AsyncIterable<policyPb.SftResponse>) {
          if (m.part?.$case === "progress") {
            const p = m.part.progress;
            onProgress({ step: p.step, loss: p.loss, learningRate: p.learningRate, gradNorm: p.gradNorm, tokensPerSecond: p.tokensPerSecond, validationLoss: p.validationLoss });
          } else if (m.part?.$case === "done") done = true;
        }
        if (!done) throw new Error("policy.Sft ended without its done message");
      },
      /**
       * K samples per prompt, in prompt order (sample k of prompt i at i*K + k), with the sampling
       * log-probs in the response-token layout, in that order too.
       */
      generate: async (prompts: readonly number[][], s: GenerateSettings): Promise<{ samples: Sample[]; logprobs: number[][] }> => {
        const K = s.samplesPerPrompt;
        const samples: Sample[] = new Array(prompts.length * K);
        const logprobs: number[][] = new Array(prompts.length * K);
        const req = { prompts: tokenBatch(prompts), samplesPerPrompt: K, temperature: s.temperature, topK: s.topK ?? 0, topP: 0, maxNewTokens: s.maxNewTokens, seed: s.seed, ignoreEos: false };
        for await (const msg of pol.serverStream("generate", req, opts) as AsyncIterable<policyPb.GenerateResponse>) {
          const b = msg.sequences as common.TokenBatch;
          const rows = splitRows(b.tokens, b.lengths);
          // The sampling log-probs come for the response tokens only: L - P per sequence.
          const lps = splitRows(msg.logprobs, b.lengths.map((L, j) => L - b.promptLengths[j]));
          rows.forEach((tokens, j) => {
            const idx = msg.promptIndices[Math.floor(j / K)] * K + (j % K);
            samples[idx] = { tokens, promptLength: b.promptLengths[j], eos: msg.eos[j] };
            logprobs[idx] = lps[j];
          });
        }
        return { samples, logprobs };
      },
      /** log pi(a_t|s_t) and V(s_t) of the response tokens, in the response-token layout. */
      evaluate: async (samples: readonly Sample[], temperature: number, skipValues = false) => {
        const r = await pol.unary("evaluate", { sequences: sampleBatch(samples), temperature, skipValues }, opts);
        return { logprobs: r.logprobs, values: r.values };
      },
      /**
       * A PpoUpdate (phase `ppo.update`) with, for PPO-ptx, the pretraining gradients of the same
       * version (phase `ppo.ptx_gradients`, alongside) piped from pretrain-mix chunk by chunk.
       */
      ppoUpdate: (mb: PpoMinibatch, ptx: PtxRequest | undefined, attrs: Attributes) =>
        phase("ppo.update", attrs, async () => {
          const call = pol.clientStream("ppoUpdate", opts);
          let ptxLoss: number | undefined;
          try {
            await call.write({ part: { $case: "minibatch", minibatch: minibatch(mb, ptx !== undefined, runId) } });
            if (ptx) {
              await phase("ppo.ptx_gradients", attrs, async () => {
                for await (const m of pm.serverStream("ptxGradients", ptxRequest(ptx), opts) as AsyncIterable<pretrainMix.PtxGradientsResponse>) {
                  if (m.part?.$case === "loss") ptxLoss = m.part.loss.loss;
                  else if (m.part?.$case === "chunk") await call.write({ part: { $case: "ptxGradients", ptxGradients: m.part.chunk } });
                }
              });
            }
          } catch (e) {
            call.cancel();
            throw e;
          }
          const r = await call.end();
          return { ...r, policyVersion: r.policyWeights?.version, ptxLoss };
        }),
    },
    rewardModel: {
      loadCheckpoint: async (dir: string) => void (await rm.unary("loadCheckpoint", { source: { $case: "checkpointDir", checkpointDir: dir } }, opts)),
      /** A language model's folder as the trunk of a new reward model (zero head). */
      loadModelDir: async (dir: string) => void (await rm.unary("loadCheckpoint", { source: { $case: "modelDir", modelDir: dir } }, opts)),
      save: async (dir: string): Promise<Saved> => {
        const r = await rm.unary("saveCheckpoint", { dir }, opts);
        return { dir: r.dir, weights: refs(r.weights), bytes: r.bytesWritten };
      },
      /** Train on ranked groups (64 per message); `onProgress` gets every progress message. */
      train: async (s: TrainSettings, groups: readonly RankedSamples[], onProgress: (p: StepProgress) => void): Promise<{ finalLoss: number; pairs: number }> => {
        const call = rm.bidi("train", { signal, deadlineMs: TRAIN_DEADLINE_MS });
        call.write({ part: { $case: "config", config: { ...s, optimizer: adam(s.optimizer), schedule: schedule(s.schedule) } } });
        for (let i = 0; i < groups.length; i += 64) call.write({ part: { $case: "comparisons", comparisons: { groups: groups.slice(i, i + 64).map(group), pairs: [] } } });
        call.end();
        let done = { finalLoss: 0, pairs: 0 };
        for await (const m of call as AsyncIterable<rewardModel.TrainResponse>) {
          if (m.part?.$case === "progress") {
            const p = m.part.progress;
            onProgress({ step: p.step, loss: p.loss, learningRate: p.learningRate, accuracy: p.accuracy });
          } else if (m.part?.$case === "done") done = { finalLoss: m.part.done.finalLoss, pairs: m.part.done.pairs };
        }
        return done;
      },
      /** Sets the bias so that these reference sequences score 0 on average. */
      normalize: async (references: readonly number[][]) => {
        const call = rm.clientStream("normalize", opts);
        await call.write({ references: tokenBatch(references) });
        await call.end();
      },
      /** Pairs ordered as ranked, of all the groups' pairs (16 groups per call). */
      accuracy: async (groups: readonly RankedSamples[]) => {
        let pairs = 0;
        let correct = 0;
        for (let i = 0; i < groups.length; i += 16) {
          const a = await rm.unary("accuracy", { comparisons: { groups: groups.slice(i, i + 16).map(group), pairs: [] } }, opts);
          pairs += a.pairs;
          correct += a.correct;
        }
        return { pairs, correct };
      },
      /** r(x, y) per sample. */
      score: async (samples: readonly Sample[]) => (await rm.unary("score", { sequences: sampleBatch(samples) }, opts)).scores,
    },
    reference: {
      /** The frozen reference from a policy checkpoint folder's policy weights. */
      load: async (dir: string) => void (await ref.unary("loadWeights", { source: { $case: "checkpointDir", checkpointDir: dir } }, opts)),
      /** log pi_ref(a_t|s_t) of each sample's response tokens (the response-token layout). */
      logprobs: async (samples: readonly Sample[], temperature: number): Promise<number[][]> => {
        const r = await ref.unary("logProbs", { batch: sampleBatch(samples), temperature }, opts);
        // The reference answers in the L-1 layout (every token after the first): a response's
        // log-probs are the last L-P of its L-1.
        return splitRows(r.logprobs, samples.map((smp) => smp.tokens.length - 1)).map((row, i) => row.slice(samples[i].promptLength - 1));
      },
    },
    pretrainMix: {
      /** `sequences` windows of the corpus from `cursor` on, each `sequenceLength` tokens. */
      sample: async (split: "train" | "validation", sequences: number, sequenceLength: number, cursor: number, seed: number, textCorpus?: TextCorpus): Promise<number[][]> => {
        const req = { split: split === "train" ? pretrainMix.Split.SPLIT_TRAIN : pretrainMix.Split.SPLIT_VALIDATION, sequences, sequenceLength, cursor, seed, textCorpus };
        const b = (await pm.unary("sampleBatch", req, opts)).batch;
        const toks = b?.tokens ?? [];
        return Array.from({ length: sequences }, (_, i) => toks.slice(i * sequenceLength, (i + 1) * sequenceLength));
      },
      tokenizer: async () => (await pm.unary("getInfo", {}, opts)).tokenizer,
    },
    labeling: {
      /**
       * Submits the batch (or finds it again: a resumed run submits the same one, and nothing is
       * submitted twice), waits until `minRanked` comparisons are ranked and returns the first
       * ranking of each ranked comparison (responses in the order submitted).
       */
      collect: async (
        batchId: string,
        comparisons: readonly ComparisonToRank[],
        o: { minRanked: number; overlapFraction?: number; source: string; onProgress: (p: BatchProgress) => void },
      ): Promise<LabeledRanking[]> => {
        if (!lab) throw new FailedPreconditionError('rankings.source is "labeling" but the coordinator has no labeling service: set its LABELING_ADDR (rlhf run: LABELING_ADDR in its environment)');
        return (await lab.collectRankings(batchId, comparisons, { ...o, signal })).rankings;
      },
    },
  };
}

function minibatch(mb: PpoMinibatch, withPtxGradients: boolean, runId: string | undefined): policyPb.PpoMinibatch {
  return {
    sequences: sampleBatch(mb.samples),
    oldLogprobs: mb.oldLogprobs,
    oldValues: mb.oldValues,
    advantages: mb.advantages,
    returns: mb.returns,
    hyperparameters: {
      clipRange: mb.clipRange,
      valueClipRange: mb.valueClipRange,
      valueLossCoef: mb.valueLossCoef,
      entropyCoef: mb.entropyCoef,
      temperature: mb.temperature,
      policyOptimizer: adam(mb.policyOptimizer),
      criticOptimizer: adam(mb.criticOptimizer),
    },
    expectedVersion: mb.expectedVersion,
    withPtxGradients,
    runId,
  };
}

function ptxRequest(p: PtxRequest): pretrainMix.PtxGradientsRequest {
  return {
    policyWeights: { modelId: POLICY_MODEL_ID, version: p.policyVersion, source: "" },
    gamma: p.gamma,
    sequences: p.sequences,
    sequenceLength: p.sequenceLength,
    cursor: p.cursor,
    seed: p.seed,
    temperature: p.temperature,
    dtype: common.Dtype.DTYPE_FLOAT32,
    textCorpus: p.textCorpus,
  };
}
