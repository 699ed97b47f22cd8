import { DomainError, ResourceExhaustedError } from "@rlhf/errors";
import { observeQueue, recordQueueRejected } from "./metrics";

/**
 * Runs tasks one at a time, in arrival order, with at most `capacity` waiting. A task offered to a
 * full queue is refused at once with ResourceExhaustedError (RESOURCE_EXHAUSTED), so a burst of
 * calls never grows memory without bound. Used to serialise training calls on one model.
 */
export class SerialQueue {
  private tail: Promise<unknown> = Promise.resolve();
  private waiting = 0;
  private running = 0;

  /** @param capacity most tasks waiting behind the running one (default 8). */
  constructor(
    readonly name: string,
    readonly capacity = 8,
  ) {
    // Exported as rlhf.queue.depth{rlhf.queue=<name>}; refusals count in rlhf.queue.rejected.
    observeQueue(this);
  }

  /** Tasks waiting plus the one running. */
  get depth(): number {
    return this.waiting + this.running;
  }

  /**
   * Queue `task`; resolves with its result once it has run. With `signal` (the call's: aborted when
   * its client cancels or its deadline passes), a task whose caller gave up before its turn came
   * does not run and rejects with CANCELLED.
   */
  run<T>(task: () => Promise<T> | T, signal?: AbortSignal): Promise<T> {
    if (this.waiting >= this.capacity) {
      recordQueueRejected(this.name);
      return Promise.reject(
        new ResourceExhaustedError(`${this.name} queue is full (${this.capacity} waiting); retry later`),
      );
    }
    this.waiting++;
    const result = this.tail.then(async () => {
      this.waiting--;
      if (signal?.aborted) throw new DomainError("CANCELLED", `the caller gave up while waiting in the ${this.name} queue: the call was not run`);
      this.running++;
      try {
        return await task();
      } finally {
        this.running--;
      }
    });
    // The chain continues whether or not this task failed.
    this.tail = result.catch(() => undefined);
    return result;
  }
}
