/**
 * Resumable, seeded iteration over a list (SFT examples, RM prompts, PPO prompts): each epoch is
 * a permutation fixed by (seed, epoch), and the position is a small cursor that a checkpoint
 * saves ("data cursors"); a sampler rebuilt from the same items, seed and cursor continues
 * exactly where the saved one stopped.
 */
import { InvalidArgumentError } from "@rlhf/errors";
import { Rng, permutation } from "./rng";

/** Position in an epoch-shuffled stream: the next item is `permutation(epoch)[index]`. */
export interface EpochCursor {
  readonly epoch: number;
  readonly index: number;
}

/** Checks a cursor read from a checkpoint. */
export function checkCursor(c: EpochCursor, field = "cursor"): void {
  if (!Number.isSafeInteger(c.epoch) || c.epoch < 0) throw new InvalidArgumentError(`${field}.epoch`, `must be a non-negative integer, got ${c.epoch}`);
  if (!Number.isSafeInteger(c.index) || c.index < 0) throw new InvalidArgumentError(`${field}.index`, `must be a non-negative integer, got ${c.index}`);
}

/** Options of {@link EpochSampler}. */
export interface EpochSamplerOptions {
  /** Seed of the per-epoch shuffles (default 0). */
  seed?: number;
  /** Where to start (default `{epoch: 0, index: 0}`). */
  cursor?: EpochCursor;
  /** Shuffle each epoch (default true); false keeps the list order. */
  shuffle?: boolean;
}

/** Draws items in seeded per-epoch shuffled order, crossing epoch boundaries seamlessly. */
export class EpochSampler<T> {
  private readonly items: readonly T[];
  private readonly seed: number;
  private readonly shuffle: boolean;
  private epoch: number;
  private index: number;
  private order: number[] | undefined;
  private orderEpoch = -1;

  constructor(items: readonly T[], opts: EpochSamplerOptions = {}) {
    if (items.length === 0) throw new InvalidArgumentError("items", "cannot sample from an empty list");
    this.items = items;
    this.seed = opts.seed ?? 0;
    this.shuffle = opts.shuffle ?? true;
    const c = opts.cursor ?? { epoch: 0, index: 0 };
    checkCursor(c);
    if (c.index > items.length) throw new InvalidArgumentError("cursor.index", `${c.index} is past the end of an epoch of ${items.length} items`);
    this.epoch = c.epoch;
    this.index = c.index;
  }

  /** The position of the next item (save it to resume). */
  get cursor(): EpochCursor {
    return { epoch: this.epoch, index: this.index };
  }

  /** Number of items per epoch. */
  get size(): number {
    return this.items.length;
  }

  private orderOf(epoch: number): number[] | undefined {
    if (!this.shuffle) return undefined;
    if (this.orderEpoch !== epoch) {
      this.order = permutation(this.items.length, new Rng(this.seed, "epoch", epoch));
      this.orderEpoch = epoch;
    }
    return this.order;
  }

  /** The next `n` items (n >= 1), continuing into the next epoch when this one ends. */
  next(n: number): T[] {
    if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("n", `must be a positive integer, got ${n}`);
    const out: T[] = [];
    while (out.length < n) {
      if (this.index >= this.items.length) {
        this.epoch++;
        this.index = 0;
      }
      const order = this.orderOf(this.epoch);
      out.push(this.items[order ? order[this.index] : this.index]);
      this.index++;
    }
    return out;
  }
}
