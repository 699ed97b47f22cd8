/**
 * The reference model's domain: one frozen GPT-2 and the WeightsRef naming it. A load builds
 * the new model completely (validating every tensor) before it replaces the old one, so a failed
 * load changes nothing, and the old model is disposed only after the swap.
 */
import { GPT2, loadCheckpoint, type GPT2Config, type PackedSequences } from "@rlhf/model";
import type { NamedHostTensors } from "@rlhf/compute";
import type { PathRoots } from "@rlhf/errors";
import type { Logger } from "@rlhf/grpc-kit";
import { ModelSlot, resolveCheckpointDir, type LoadedRef, type PulledWeights } from "@rlhf/model-service";

/** Per-token log-probabilities of a packed batch, concatenated. */
export interface LogProbsResult {
  values: Float32Array;
  /** L-1 per sequence. */
  lengths: number[];
}

export class ReferenceModel {
  private readonly slot: ModelSlot<GPT2>;

  constructor(
    log: Logger,
    private readonly opts: { maxLogitsElements: number; checkpointRoots?: PathRoots; onLoaded?: () => void },
  ) {
    this.slot = new ModelSlot(log, { modelId: "", missing: "no model is loaded: call LoadWeights (or start with CHECKPOINT_DIR / INIT_PRESET)", onLoaded: opts.onLoaded });
  }

  get config(): Readonly<GPT2Config> | undefined {
    return this.slot.config;
  }

  get weights(): LoadedRef {
    return this.slot.ref;
  }

  /** Loads a checkpoint folder (config.json + model.safetensors). */
  async loadCheckpoint(dir: string, field = "checkpoint_dir"): Promise<void> {
    const abs = resolveCheckpointDir(dir, field, this.opts.checkpointRoots);
    const model = await loadCheckpoint(abs, { trainable: false });
    this.slot.swap(model, { modelId: "reference", version: 0, source: abs });
  }

  /** Builds a seeded random model. */
  loadRandom(config: GPT2Config, seed: number): void {
    this.slot.swap(GPT2.random(config, seed, { trainable: false }), { modelId: "reference", version: 0, source: `random:${seed}` });
  }

  /** The policy's weights, pulled and verified: its WeightsRef is kept. */
  loadPulled(p: PulledWeights): void {
    this.loadTensors(p.config, p.tensors, { modelId: p.modelId, version: p.version, source: p.source });
  }

  /** Builds the model from a received tensor set (already digest-checked). */
  loadTensors(config: GPT2Config, tensors: NamedHostTensors, ref: LoadedRef): void {
    this.slot.swap(GPT2.fromHostTensors(config, tensors, { copy: false, trainable: false }), ref);
  }

  /** log p(x_t | x_<t) of every sequence; logits divided by `temperature`. */
  logProbs(batch: PackedSequences, temperature: number): LogProbsResult {
    const model = this.slot.require();
    const per = model.tokenLogProbs(batch, temperature, { maxLogitsElements: this.opts.maxLogitsElements });
    const lengths = per.map((p) => p.length);
    const values = new Float32Array(lengths.reduce((a, b) => a + b, 0));
    let o = 0;
    for (const p of per) {
      values.set(p, o);
      o += p.length;
    }
    return { values, lengths };
  }

  dispose(): void {
    this.slot.dispose();
  }
}
