/**
 * Built models by weights version: least recently used dropped first, one pull per version
 * however many calls ask for it at once (single flight), and an evicted model freed only once the
 * last call using it has released it (reference counts). No gRPC here: the loader is injected
 * (policyModelCache's pulls the policy's StreamWeights and builds a GPT2).
 */
import { DomainError } from "@rlhf/errors";

/** Anything the cache may hold. */
export interface Disposable {
  dispose(): void;
}

/** What a loader returns for a version. */
export interface Loaded<M> {
  model: M;
  /** Where the weights came from, e.g. "policy@127.0.0.1:50051" (WeightsRef.source). */
  source: string;
}

/** Loads (pulls and builds) a version; rejects with the upstream's error, e.g. NOT_FOUND. */
export type Loader<M> = (version: number, signal: AbortSignal) => Promise<Loaded<M>>;

/** A model in use by one call: call `release()` exactly once when done with it. */
export interface Lease<M> {
  model: M;
  version: number;
  source: string;
  /** True if the version was already cached (no pull waited for). */
  cacheHit: boolean;
  /** Milliseconds this call waited for a pull (0 on a cache hit). */
  pullMs: number;
  release(): void;
}

interface Entry<M> {
  model: M;
  version: number;
  source: string;
  /** Calls holding a lease. */
  refs: number;
  /** Dropped from the cache; disposed when `refs` reaches 0. */
  evicted: boolean;
}

/** One call waiting for a pull. */
interface Waiter<M> {
  started: number;
  resolve(lease: Lease<M>): void;
  reject(err: unknown): void;
}

interface Pull<M> {
  /** Calls still waiting; served (and removed) all at once when the pull lands or fails. */
  waiters: Set<Waiter<M>>;
  abort: AbortController;
}

/** See the file comment. */
export class WeightsCache<M extends Disposable> {
  /** Cached entries, least recently used first (Map order). */
  private readonly entries = new Map<number, Entry<M>>();
  private readonly pulls = new Map<number, Pull<M>>();
  private closed = false;

  constructor(
    /** Most versions kept (>= 1). */
    readonly capacity: number,
    private readonly load: Loader<M>,
  ) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be an integer >= 1, got ${capacity}`);
  }

  /** Cached versions with their sources, most recently used first. */
  cached(): { version: number; source: string }[] {
    return [...this.entries.values()].reverse().map((e) => ({ version: e.version, source: e.source }));
  }

  /** Pulls in progress. */
  get pulling(): number {
    return this.pulls.size;
  }

  /**
   * The model of `version`, from the cache or from one shared pull. `signal` abandons this
   * call's wait; the pull itself is cancelled only when every call waiting for it has gone.
   */
  acquire(version: number, signal?: AbortSignal): Promise<Lease<M>> {
    if (this.closed) return Promise.reject(new DomainError("UNAVAILABLE", "the service is shutting down"));
    if (signal?.aborted) return Promise.reject(signal.reason);
    const hit = this.entries.get(version);
    if (hit) {
      this.touch(hit);
      hit.refs++;
      return Promise.resolve(this.lease(hit, true, 0));
    }
    let pull = this.pulls.get(version);
    if (!pull) {
      pull = { waiters: new Set(), abort: new AbortController() };
      this.pulls.set(version, pull);
      this.startPull(version, pull);
    }
    const p = pull;
    return new Promise<Lease<M>>((resolve, reject) => {
      const onAbort = () => {
        // Still waiting (not served yet): leave; the last one to leave cancels the pull.
        if (!p.waiters.delete(w)) return;
        if (p.waiters.size === 0) {
          if (this.pulls.get(version) === p) this.pulls.delete(version); // a later call starts afresh
          p.abort.abort(signal?.reason);
        }
        reject(signal?.reason);
      };
      const w: Waiter<M> = {
        started: Date.now(),
        resolve: (lease) => {
          signal?.removeEventListener("abort", onAbort);
          resolve(lease);
        },
        reject: (err) => {
          signal?.removeEventListener("abort", onAbort);
          reject(err);
        },
      };
      p.waiters.add(w);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  private startPull(version: number, pull: Pull<M>): void {
    const settle = () => {
      if (this.pulls.get(version) === pull) this.pulls.delete(version);
      const waiters = [...pull.waiters];
      pull.waiters.clear();
      return waiters;
    };
    new Promise<Loaded<M>>((resolve) => resolve(this.load(version, pull.abort.signal))).then(
      ({ model, source }) => {
        const waiters = settle();
        let entry = this.entries.get(version);
        if (entry) {
          model.dispose(); // another pull of this version landed first
        } else {
          entry = { model, version, source, refs: 0, evicted: this.closed };
          if (!this.closed) this.entries.set(version, entry);
        }
        // Every call still waiting gets its reference now, before any eviction can run.
        entry.refs += waiters.length;
        if (this.closed) {
          if (entry.refs === 0) model.dispose();
        } else {
          this.touch(entry);
          this.evictBeyondCapacity();
        }
        const now = Date.now();
        for (const w of waiters) w.resolve(this.lease(entry, false, now - w.started));
      },
      (err: unknown) => {
        for (const w of settle()) w.reject(err);
      },
    );
  }

  private touch(e: Entry<M>): void {
    this.entries.delete(e.version);
    this.entries.set(e.version, e);
  }

  private evictBeyondCapacity(): void {
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.values().next().value as Entry<M>;
      this.entries.delete(oldest.version);
      oldest.evicted = true;
      if (oldest.refs === 0) oldest.model.dispose();
    }
  }

  private lease(e: Entry<M>, cacheHit: boolean, pullMs: number): Lease<M> {
    let released = false;
    return {
      model: e.model,
      version: e.version,
      source: e.source,
      cacheHit,
      pullMs,
      release: () => {
        if (released) return;
        released = true;
        e.refs--;
        if (e.evicted && e.refs === 0) e.model.dispose();
      },
    };
  }

  /** Cancels pulls, frees every model not in use (the rest when released); later acquires fail. */
  dispose(): void {
    this.closed = true;
    for (const p of this.pulls.values()) p.abort.abort(new DomainError("UNAVAILABLE", "the service is shutting down"));
    for (const e of this.entries.values()) {
      e.evicted = true;
      if (e.refs === 0) e.model.dispose();
    }
    this.entries.clear();
  }
}
