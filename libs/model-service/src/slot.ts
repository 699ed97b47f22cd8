/**
 * The model slot of a service that serves one model: the loaded model and the WeightsRef naming
 * it. A load builds the new model completely before `swap` puts it in, so a failed load changes
 * nothing, and the old model is disposed only after the swap.
 */
import * as tf from "@tensorflow/tfjs-core";
import type { GPT2Config } from "@rlhf/model";
import { FailedPreconditionError } from "@rlhf/errors";
import type { Logger } from "@rlhf/grpc-kit";

/** Which weights are loaded (the WeightsRef a service hands out). */
export interface LoadedRef {
  modelId: string;
  version: number;
  source: string;
}

/** What a slot can hold: a model with an architecture that frees its tensors. */
export interface SlotModel {
  readonly config: Readonly<GPT2Config>;
  dispose(): void;
}

/** Options of {@link ModelSlot}. */
export interface ModelSlotOptions {
  /** model_id of the ref before any load. */
  modelId: string;
  /** FAILED_PRECONDITION message of `require` while empty (which call loads a model). */
  missing: string;
  /** Called after every swap (the service reports SERVING). */
  onLoaded?: () => void;
}

export class ModelSlot<M extends SlotModel> {
  private current?: M;
  private loaded: LoadedRef;

  constructor(
    private readonly log: Logger,
    private readonly opts: ModelSlotOptions,
  ) {
    this.loaded = { modelId: opts.modelId, version: 0, source: "" };
  }

  /** The model, if one is loaded. */
  get model(): M | undefined {
    return this.current;
  }

  get config(): Readonly<GPT2Config> | undefined {
    return this.current?.config;
  }

  /** A copy of the loaded ref. */
  get ref(): LoadedRef {
    return { ...this.loaded };
  }

  /** The loaded model, or FAILED_PRECONDITION. */
  require(): M {
    if (!this.current) throw new FailedPreconditionError(this.opts.missing);
    return this.current;
  }

  /** One more change of the weights in place (an optimiser step): the version goes up by one. */
  bumpVersion(): void {
    this.loaded = { ...this.loaded, version: this.loaded.version + 1 };
  }

  /** Puts `next` in, disposes the old model and logs the load. */
  swap(next: M, ref: LoadedRef): void {
    const old = this.current;
    this.current = next;
    this.loaded = ref;
    old?.dispose();
    this.opts.onLoaded?.();
    // `version` is the service's own on every line: the weights' version goes under another key.
    this.log.info({ modelId: ref.modelId, weightsVersion: ref.version, source: ref.source, config: next.config, numTensors: tf.memory().numTensors }, "weights loaded");
  }

  dispose(): void {
    this.current?.dispose();
    this.current = undefined;
  }
}
