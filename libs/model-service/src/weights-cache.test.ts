// The weights cache with a fake loader: single flight, LRU order, reference counts, failures, cancellation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { DomainError, NotFoundError } from "@rlhf/errors";
import { WeightsCache, type Loaded } from "./weights-cache";

class FakeModel {
  disposed = 0;
  constructor(readonly version: number) {}
  dispose(): void {
    this.disposed++;
  }
}

/** A loader whose pulls the test completes by hand. */
function manualLoader() {
  const pending: { version: number; signal: AbortSignal; resolve: (m: Loaded<FakeModel>) => void; reject: (e: unknown) => void }[] = [];
  const loads: number[] = [];
  const load = (version: number, signal: AbortSignal) =>
    new Promise<Loaded<FakeModel>>((resolve, reject) => {
      loads.push(version);
      const entry = { version, signal, resolve, reject };
      pending.push(entry);
      signal.addEventListener("abort", () => {
        pending.splice(pending.indexOf(entry), 1);
        reject(signal.reason);
      }, { once: true });
    });
  const land = (version: number) => {
    const i = pending.findIndex((p) => p.version === version);
    const [p] = pending.splice(i, 1);
    p.resolve({ model: new FakeModel(version), source: `fake:${version}` });
  };
  return { load, loads, pending, land };
}

const tick = () => new Promise((r) => setImmediate(r));

test("concurrent calls for one version share one pull; a later call is a hit", async () => {
  const l = manualLoader();
  const cache = new WeightsCache<FakeModel>(2, l.load);
  const a = cache.acquire(1);
  const b = cache.acquire(1);
  await tick();
  assert.deepEqual(l.loads, [1]);
  assert.equal(cache.pulling, 1);
  l.land(1);
  const [la, lb] = await Promise.all([a, b]);
  assert.equal(la.model, lb.model);
  assert.equal(la.cacheHit, false);
  assert.equal(lb.cacheHit, false);
  assert.equal(la.source, "fake:1");
  const lc = await cache.acquire(1);
  assert.equal(lc.cacheHit, true);
  assert.equal(lc.pullMs, 0);
  assert.deepEqual(l.loads, [1]);
  for (const x of [la, lb, lc]) x.release();
  assert.equal(la.model.disposed, 0, "cached models stay");
});

test("least recently used goes first; a model in use is freed only after its last release", async () => {
  const l = manualLoader();
  const cache = new WeightsCache<FakeModel>(2, l.load);
  const get = async (v: number) => {
    const p = cache.acquire(v);
    await tick();
    if (l.pending.some((x) => x.version === v)) l.land(v);
    return p;
  };
  const v1 = await get(1);
  (await get(2)).release();
  assert.deepEqual(cache.cached().map((c) => c.version), [2, 1]);
  (await get(1)).release(); // hit: 1 is now the most recent; v1's first lease is still held
  assert.deepEqual(cache.cached().map((c) => c.version), [1, 2]);
  const v3 = await get(3);
  assert.deepEqual(cache.cached().map((c) => c.version), [3, 1], "2 was least recently used");
  const v4 = await get(4); // evicts 1, which v1 still holds
  assert.deepEqual(cache.cached().map((c) => c.version), [4, 3]);
  assert.equal(v1.model.disposed, 0, "evicted but in use: not freed");
  v1.release();
  v1.release(); // a second release is a no-op
  assert.equal(v1.model.disposed, 1);
  (await get(1)).release(); // pulled again
  assert.deepEqual(l.loads, [1, 2, 3, 4, 1]);
  assert.deepEqual(cache.cached().map((c) => c.version), [1, 4]);
  assert.equal(v3.model.disposed, 0, "3 is evicted but still leased");
  v3.release();
  assert.equal(v3.model.disposed, 1);
  v4.release();
  cache.dispose();
  assert.equal(v4.model.disposed, 1);
  await assert.rejects(cache.acquire(4), /shutting down/);
});

test("a failed pull reaches every waiter, caches nothing, and the next call pulls again", async () => {
  const l = manualLoader();
  const cache = new WeightsCache<FakeModel>(1, l.load);
  const a = cache.acquire(5);
  const b = cache.acquire(5);
  await tick();
  l.pending.shift()!.reject(new NotFoundError("version", "5 is not the current version"));
  await assert.rejects(a, /^NotFoundError: version: 5 is not the current version$/);
  await assert.rejects(b, (e: unknown) => e instanceof DomainError && e.code === "NOT_FOUND");
  assert.deepEqual(cache.cached(), []);
  const c = cache.acquire(5);
  await tick();
  l.land(5);
  assert.equal((await c).version, 5);
  assert.deepEqual(l.loads, [5, 5]);
});

test("a cancelled waiter leaves; the pull goes on for the others and is cancelled when none is left", async () => {
  const l = manualLoader();
  const cache = new WeightsCache<FakeModel>(2, l.load);
  const ac1 = new AbortController();
  const ac2 = new AbortController();
  const a = cache.acquire(1, ac1.signal);
  const b = cache.acquire(1, ac2.signal);
  await tick();
  ac1.abort(new DomainError("CANCELLED", "gone"));
  await assert.rejects(a, /gone/);
  assert.equal(l.pending[0].signal.aborted, false, "b still waits");
  l.land(1);
  const lb = await b;
  lb.release();
  const ac3 = new AbortController();
  const c = cache.acquire(2, ac3.signal);
  await tick();
  const pull2 = l.pending[0];
  ac3.abort(new DomainError("CANCELLED", "gone too"));
  await assert.rejects(c, /gone too/);
  assert.equal(pull2.signal.aborted, true, "nobody waits: the pull is cancelled");
  assert.equal(l.pending.length, 0);
  // A new call for that version starts a fresh pull rather than joining the cancelled one.
  const d = cache.acquire(2);
  await tick();
  assert.deepEqual(l.loads, [1, 2, 2]);
  l.land(2);
  assert.equal((await d).cacheHit, false);
});
