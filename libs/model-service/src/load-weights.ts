/**
 * Where a model service's weights come from: at start (CHECKPOINT_DIR / MODEL_DIR / INIT_PRESET)
 * and in a load request (the `source` oneof of LoadWeights / LoadCheckpoint: checkpoint_dir,
 * model_dir, random_init, policy_weights). One dispatch for every service; each says how it
 * loads each kind of source.
 */
import type { common } from "@rlhf/proto";
import { presetConfig, type GPT2Config } from "@rlhf/model";
import { InvalidArgumentError, confinePath, type PathRoots } from "@rlhf/errors";
import type { SerialQueue } from "@rlhf/grpc-kit";
import { modelConfigFromProto, modelConfigToProto } from "@rlhf/tensor-transport";
import { pullPolicyWeights, type PulledWeights, type PullPolicyWeightsOptions } from "./policy-weights";

/** How a service loads each kind of source (`field` names the variable or request field). */
export interface WeightsTarget {
  loadCheckpoint(dir: string, field?: string): Promise<void>;
  /** A plain language-model folder; a service without it has no model_dir source. */
  loadModelDir?(dir: string, field?: string): Promise<void>;
  loadRandom(config: GPT2Config, seed: number, field?: string): void;
  /** The policy's weights, pulled and verified; a service without it has no policy_weights source. */
  loadPulled?(pulled: PulledWeights): void;
}

/** The start-up sources of a model service's config (at most one is set; see `atMostOneEnv`). */
export interface InitialWeightsConfig {
  checkpointDir?: string;
  modelDir?: string;
  initPreset?: string;
  initSeed: number;
}

/** Loads what the config names at start, if anything: CHECKPOINT_DIR, else MODEL_DIR, else INIT_PRESET. */
export async function loadInitialWeights(cfg: InitialWeightsConfig, target: WeightsTarget): Promise<void> {
  if (cfg.checkpointDir) await target.loadCheckpoint(cfg.checkpointDir, "CHECKPOINT_DIR");
  else if (cfg.modelDir && target.loadModelDir) await target.loadModelDir(cfg.modelDir, "MODEL_DIR");
  else if (cfg.initPreset) target.loadRandom(presetConfig(cfg.initPreset), cfg.initSeed, "INIT_PRESET");
}

/** The `source` oneof of a load request (the cases a service's contract has). */
export type WeightsSource =
  | { $case: "checkpointDir"; checkpointDir: string }
  | { $case: "modelDir"; modelDir: string }
  | { $case: "randomInit"; randomInit: common.RandomInit }
  | { $case: "policyWeights"; policyWeights: common.WeightsRef };

/** Options of {@link loadWeightsSource}. */
export interface LoadWeightsOptions<R> {
  target: WeightsTarget;
  /** Every load runs on the service's queue (a pull from the policy runs before, outside it). */
  queue: SerialQueue;
  /** INVALID_ARGUMENT message when the request sets no source (lists the service's cases). */
  missing: string;
  /** Where and how to pull the policy's weights (POLICY_ADDR, deadline, limits). */
  pull: Omit<PullPolicyWeightsOptions, "version" | "signal">;
  /** The caller's call was cancelled: the pull stops. */
  signal?: AbortSignal;
  /** The response, read on the queue right after the load. */
  loaded(): R;
}

/** Loads the weights a request's `source` names, on the queue; returns `loaded()`. */
export async function loadWeightsSource<R>(src: WeightsSource | undefined, o: LoadWeightsOptions<R>): Promise<R> {
  const t = o.target;
  if (!src) throw new InvalidArgumentError("source", o.missing);
  switch (src.$case) {
    case "checkpointDir":
      return o.queue.runFile(`LoadCheckpoint from ${src.checkpointDir}`, async () => {
        await t.loadCheckpoint(src.checkpointDir);
        return o.loaded();
      });
    case "modelDir": {
      const load = t.loadModelDir?.bind(t);
      if (!load) throw new InvalidArgumentError("source", o.missing);
      return o.queue.runFile(`LoadCheckpoint from ${src.modelDir}`, async () => {
        await load(src.modelDir);
        return o.loaded();
      });
    }
    case "randomInit": {
      const config = modelConfigFromProto(src.randomInit.config, "random_init.config");
      const seed = src.randomInit.seed;
      if (!Number.isSafeInteger(seed) || seed < 0 || seed > 2 ** 31 - 1) throw new InvalidArgumentError("random_init.seed", `must be in [0, 2^31 - 1], got ${seed}`);
      return o.queue.run(() => {
        t.loadRandom(config, seed);
        return o.loaded();
      });
    }
    case "policyWeights": {
      const load = t.loadPulled?.bind(t);
      if (!load) throw new InvalidArgumentError("source", o.missing);
      const pulled = await pullPolicyWeights({ ...o.pull, version: src.policyWeights.version, signal: o.signal });
      return o.queue.run(() => {
        load(pulled);
        return o.loaded();
      });
    }
  }
}

/** Variables whose folders the operator set at start: not confined to CHECKPOINT_ROOT. */
const OPERATOR_FIELDS: ReadonlySet<string> = new Set(["CHECKPOINT_DIR", "MODEL_DIR"]);

/**
 * `dir` made absolute and real (symlinks resolved; see `confinePath` of @rlhf/errors). A request's
 * folder (`field` in snake_case) must lie inside `roots` (else PERMISSION_DENIED naming `field`);
 * CHECKPOINT_DIR / MODEL_DIR, set by the operator at start, are not confined.
 */
export function resolveCheckpointDir(dir: string, field: string, roots?: PathRoots): string {
  return confinePath(dir, field, OPERATOR_FIELDS.has(field) ? undefined : roots);
}

/** The `{weights, config}` answer of a load: the WeightsRef and architecture now in place. */
export function loadedWeights(model: { readonly weights: common.WeightsRef; readonly config?: Readonly<GPT2Config> }): { weights: common.WeightsRef; config: common.ModelConfig | undefined } {
  const c = model.config;
  return { weights: model.weights, config: c ? modelConfigToProto(c) : undefined };
}
