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
  private overdue?: string;
  /**
   * Told when a task with a deadline overran it (with what it is) and again, with undefined, when
   * that task finally settled: while it runs past its deadline the queue is stuck (the model
   * services then report NOT_SERVING, see @rlhf/model-service).
   */
  onStuck?: (what: string | undefined) => void;

  /**
   * @param capacity most tasks waiting behind the running one (default 8).
   * @param fileDeadlineMs how long a task run with {@link runFile} may take (default 10 minutes).
   */
  constructor(
    readonly name: string,
    readonly capacity = 8,
    readonly fileDeadlineMs = 600_000,
  ) {
    // Exported as rlhf.queue.depth{rlhf.queue=<name>}; refusals count in rlhf.queue.rejected.
    observeQueue(this);
  }

  /** What the running task is when it overran its deadline; undefined otherwise. */
  get stuck(): string | undefined {
    return this.overdue;
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
  run<T>(task: () => Promise<T> | T, signal?: AbortSignal, limit?: { deadlineMs: number; what: string }): Promise<T> {
    if (this.waiting >= this.capacity) {
      recordQueueRejected(this.name);
      return Promise.reject(
        new ResourceExhaustedError(`${this.name} queue is full (${this.capacity} waiting); retry later`),
      );
    }
    this.waiting++;
    let started = (): void => undefined;
    const turn = new Promise<void>((resolve) => (started = resolve));
    const result = this.tail.then(async () => {
      this.waiting--;
      if (signal?.aborted) throw new DomainError("CANCELLED", `the caller gave up while waiting in the ${this.name} queue: the call was not run`);
      this.running++;
      started();
      try {
        return await task();
      } finally {
        this.running--;
        if (this.overdue !== undefined) {
          this.overdue = undefined;
          this.onStuck?.(undefined);
        }
      }
    });
    // The chain continues whether or not this task failed, and only once it settled: a task past
    // its deadline still holds the queue (it may still change the model); only its caller is freed.
    this.tail = result.catch(() => undefined);
    return limit === undefined ? result : this.withDeadline(result, turn, limit);
  }

  /** {@link run} for a file operation (`what`, e.g. "SaveCheckpoint to runs/x"): bounded by the queue's file deadline. */
  runFile<T>(what: string, task: () => Promise<T> | T, signal?: AbortSignal): Promise<T> {
    return this.run(task, signal, { deadlineMs: this.fileDeadlineMs, what });
  }

  /**
   * `result`, or DEADLINE_EXCEEDED once `limit.deadlineMs` passed after the task started (`turn`):
   * for file operations, e.g. a write to a path that never completes. The queue stays held until
   * the task settles, and says so through {@link onStuck}.
   */
  private withDeadline<T>(result: Promise<T>, turn: Promise<void>, limit: { deadlineMs: number; what: string }): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      let settled = false;
      void turn.then(() => {
        if (settled) return;
        timer = setTimeout(() => {
          if (settled) return;
          settled = true;
          this.overdue = limit.what;
          this.onStuck?.(limit.what);
          reject(new DomainError("DEADLINE_EXCEEDED", `${limit.what} did not finish within ${limit.deadlineMs} ms; the ${this.name} queue waits for it, and the service reports NOT_SERVING until it does`));
        }, limit.deadlineMs);
      });
      const done = (f: () => void) => {
        clearTimeout(timer);
        if (settled) return;
        settled = true;
        f();
      };
      result.then(
        (v) => done(() => resolve(v)),
        (e: unknown) => done(() => reject(e)),
      );
    });
  }
}
