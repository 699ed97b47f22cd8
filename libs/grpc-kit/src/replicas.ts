/**
 * Scale-out of the stateless model services (reward-model, reference-model, pretrain-mix): one
 * client over every replica a service runs, with the same call methods as a KitClient, so the
 * coordinator calls it as it calls one server. The routes of the model services are in
 * replica-routes.ts.
 *
 * Addresses (REWARD_MODEL_ADDR and friends) are a comma-separated list of entries:
 * - `host:port`: one replica (its channel sticks to one address: pick_first);
 * - `dns:///name:port`: one replica per address the name resolves to (a headless Kubernetes
 *   Service lists its pods; Docker Compose lists a service's containers). Names are resolved
 *   again every `resolveEveryMs` and after a replica answered UNAVAILABLE.
 *
 * How each method is routed ({@link Route}):
 * - "broadcast": a call that sets the weights (LoadCheckpoint, LoadWeights) goes to every replica;
 *   it is remembered and replayed to replicas that appear later (a scale-up), before they get any
 *   work, so every replica in use holds the same weights.
 * - "mutate": a call that changes the weights of one replica (Train, Normalize) goes to the
 *   primary (the first replica, sticky); until the next broadcast the replicas differ, so every
 *   other call goes to the primary too.
 * - shard: a batch read (Score, LogProbs) is cut into contiguous runs of whole sequences, one per
 *   replica (balanced by tokens), called in parallel and merged in the original order; the parts
 *   must report the same weights.
 * - "every": a call about the replica itself, not its weights (RunLease) goes to every replica;
 *   it is not remembered and changes nothing of the above.
 * - "spread" (everything else): round-robin over the replicas.
 * A replica that answers UNAVAILABLE (gone) is skipped and its part retried on another; one that
 * answers FAILED_PRECONDITION after a broadcast (restarted: no model) is synced again and retried.
 */
import { promises as dnsPromises } from "node:dns";
import { isIP } from "node:net";
import { Duplex, PassThrough } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import type { common } from "@rlhf/proto";
import type { Logger } from "pino";
import {
  KitClient,
  type CallOpts,
  type ClientOptions,
  type ClientStreamCall,
  type BidiMethod,
  type BidiReq,
  type BidiRes,
  type ClientStreamMethod,
  type ClientStreamReq,
  type ClientStreamRes,
  type ServerStreamMethod,
  type ServerStreamReq,
  type ServerStreamRes,
  type UnaryMethod,
  type UnaryReq,
  type UnaryRes,
} from "./client";

/** What the recipe needs from a model service's client: KitClient's call methods. */
export type ServiceClient<C extends grpc.Client> = Pick<KitClient<C>, "unary" | "serverStream" | "clientStream" | "bidi" | "close">;

/** Cuts a batch request into parts and merges the parts' responses back, in order. */
export interface Sharder<Q, R> {
  /** At most `parts` requests, each with at least one sequence, in order. */
  split(req: Q, parts: number): Q[];
  /** The response to the whole request from the parts' responses (same order as `split`). */
  merge(parts: R[]): R;
}

/** How a method is routed; see the module comment. */
export type Route = "broadcast" | "every" | "mutate" | "spread" | { shard: Sharder<never, never> };

/** Options of {@link ReplicaSet}. */
export interface ReplicaSetOptions {
  /** The service's name, in errors and logs ("reward-model"). */
  name: string;
  /** Options of each replica's KitClient (deadline, message sizes); `name` and load balancing are set here. */
  client?: ClientOptions;
  /** Route per method name; unlisted methods are "spread". */
  routes?: Readonly<Record<string, Route>>;
  /** Unary methods that may be retried on another replica after UNAVAILABLE (reads). Default none. */
  idempotent?: readonly string[];
  /** Re-resolve `dns:///` names at most this often. Default 5,000 ms. */
  resolveEveryMs?: number;
  /** How long a call waits for a first replica to appear (pods starting). Default 60,000 ms. */
  waitForReplicasMs?: number;
  log?: Logger;
  /** Resolves the address list to `host:port` strings. Default {@link dnsResolver}. */
  resolve?: (entries: readonly AddressEntry[]) => Promise<string[]>;
}

/** One entry of an address list. */
export interface AddressEntry {
  /** Resolve the host to all its addresses (`dns:///`), or use it as it is. */
  dns: boolean;
  host: string;
  port: number;
  /** The entry as written. */
  text: string;
}

const ENTRY = /^(dns:\/\/\/)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/**
 * Parses `host:port[,dns:///name:port...]`. Throws an Error naming `what` (the variable) and the
 * bad entry.
 */
export function parseAddressList(value: string, what = "address"): AddressEntry[] {
  const entries = value.split(",").map((s) => s.trim());
  if (entries.length === 0 || entries.some((e) => e === "")) throw new Error(`${what} must be a comma-separated list of host:port or dns:///host:port entries, got "${value}"`);
  return entries.map((text) => {
    const m = ENTRY.exec(text);
    const port = m ? Number(m[3]) : NaN;
    if (!m || port < 1 || port > 65535) throw new Error(`${what}: "${text}" must look like host:port or dns:///host:port (port 1..65535)`);
    return { dns: Boolean(m[1]), host: m[2], port, text };
  });
}

type Lookup = (host: string, opts: { all: true }) => Promise<{ address: string; family: number }[]>;

/** `host:port` of an address (IPv6 in brackets). */
function hostPort(address: string, port: number): string {
  return isIP(address) === 6 ? `[${address}]:${port}` : `${address}:${port}`;
}

/**
 * The default resolver: plain entries as they are, `dns:///` names through the system resolver
 * (getaddrinfo, so search domains apply: `reward-model` inside the namespace). A name that does
 * not resolve (a headless Service without ready pods) gives no address. Sorted, no duplicates.
 */
export function dnsResolver(lookup: Lookup = (h, o) => dnsPromises.lookup(h, o)): (entries: readonly AddressEntry[]) => Promise<string[]> {
  return async (entries) => {
    const out = new Set<string>();
    for (const e of entries) {
      if (!e.dns || isIP(e.host.replace(/^\[|\]$/g, ""))) {
        out.add(e.dns ? `${e.host}:${e.port}` : e.text);
        continue;
      }
      try {
        for (const a of await lookup(e.host, { all: true })) out.add(hostPort(a.address, e.port));
      } catch {
        // ENOTFOUND / no data: no replica behind this name right now.
      }
    }
    return [...out].sort();
  };
}

/** An Error shaped like a grpc ServiceError, so callers read `code` and `details` as usual. */
export function replicaError(code: grpc.status, message: string): grpc.ServiceError {
  return Object.assign(new Error(`${code} ${grpc.status[code]}: ${message}`), { code, details: message, metadata: new grpc.Metadata() });
}

const codeOf = (err: unknown) => (err as Partial<grpc.ServiceError>).code;

interface Replica<C extends grpc.Client> {
  address: string;
  client: KitClient<C>;
  /** The broadcast generation this replica holds (0: as it started). */
  applied: number;
  /** A replay of the last broadcast in progress. */
  syncing?: Promise<boolean>;
  /** Calls started on it (for logs and tests). */
  calls: number;
}

type Ctor<C> = new (address: string, credentials: grpc.ChannelCredentials, options?: grpc.ClientOptions) => C;

/** A client over every replica of one model service; see the module comment. */
export class ReplicaSet<C extends grpc.Client> implements ServiceClient<C> {
  private readonly entries: AddressEntry[];
  private readonly replicas = new Map<string, Replica<C>>();
  private readonly resolve: (entries: readonly AddressEntry[]) => Promise<string[]>;
  private readonly resolveEveryMs: number;
  private readonly waitForReplicasMs: number;
  private readonly idempotent: ReadonlySet<string>;
  private resolvedAt = -Infinity;
  private refreshing?: Promise<void>;
  /** Broadcasts so far, and the last one (replayed to replicas that join). */
  private generation = 0;
  private lastBroadcast?: { method: string; req: unknown };
  /** Set by a "mutate" call: only the primary holds the current weights until the next broadcast. */
  private diverged = false;
  private primary?: string;
  private next = 0;
  private closed = false;

  constructor(
    private readonly Ctor: Ctor<C>,
    /** The address list as configured (see {@link parseAddressList}). */
    readonly address: string,
    private readonly opts: ReplicaSetOptions,
  ) {
    this.entries = parseAddressList(address, opts.name);
    this.resolve = opts.resolve ?? dnsResolver();
    this.resolveEveryMs = opts.resolveEveryMs ?? 5000;
    this.waitForReplicasMs = opts.waitForReplicasMs ?? 60_000;
    this.idempotent = new Set(opts.idempotent ?? []);
  }

  /** Calls started per replica address (replicas seen so far; gone ones included). */
  readonly stats = new Map<string, number>();

  /** Addresses of the replicas known now (after the last resolution). */
  get addresses(): string[] {
    return [...this.replicas.keys()].sort();
  }

  private route(method: string): Route {
    return this.opts.routes?.[method] ?? "spread";
  }

  /** Resolves the entries again and adds / drops replicas. */
  private refresh(): Promise<void> {
    this.refreshing ??= (async () => {
      try {
        const found = await this.resolve(this.entries);
        const added = found.filter((a) => !this.replicas.has(a));
        const removed = [...this.replicas.keys()].filter((a) => !found.includes(a));
        for (const a of removed) {
          this.replicas.get(a)?.client.close();
          this.replicas.delete(a);
        }
        for (const a of added) {
          const client = new KitClient(this.Ctor, a, { ...this.opts.client, name: this.entries.length === 1 && !this.entries[0].dns ? this.opts.name : `${this.opts.name}@${a}`, loadBalancing: "pick_first" });
          this.replicas.set(a, { address: a, client, applied: 0, calls: 0 });
        }
        if (added.length || removed.length) this.opts.log?.info({ service: this.opts.name, replicas: this.addresses, added, removed }, "replicas changed");
        this.resolvedAt = Date.now();
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  /** The replicas now, resolving when due; waits up to waitForReplicasMs for a first one. */
  private async current(signal?: AbortSignal): Promise<Replica<C>[]> {
    if (this.closed) throw replicaError(grpc.status.CANCELLED, `${this.opts.name}: client closed`);
    const deadline = Date.now() + this.waitForReplicasMs;
    for (;;) {
      if (Date.now() - this.resolvedAt >= this.resolveEveryMs || this.replicas.size === 0) await this.refresh();
      if (this.replicas.size > 0) return [...this.replicas.values()].sort((a, b) => (a.address < b.address ? -1 : 1));
      if (Date.now() >= deadline || signal?.aborted) {
        throw replicaError(grpc.status.UNAVAILABLE, `${this.opts.name}: no replica: ${this.address} resolved to no address within ${this.waitForReplicasMs} ms`);
      }
      await new Promise((r) => setTimeout(r, Math.min(500, Math.max(1, deadline - Date.now()))));
    }
  }

  /** Replays the last broadcast to a replica that does not hold it; false when that failed. */
  private sync(r: Replica<C>): Promise<boolean> {
    const target = this.generation;
    const last = this.lastBroadcast;
    if (r.applied >= target || !last) return Promise.resolve(true);
    r.syncing ??= (async () => {
      const started = Date.now();
      try {
        await (r.client.unary as (m: string, q: unknown) => Promise<unknown>)(last.method, last.req);
        r.applied = target;
        this.opts.log?.info({ service: this.opts.name, replica: r.address, method: last.method, ms: Date.now() - started }, "replica synced: replayed the last weights load");
        return true;
      } catch (err) {
        this.opts.log?.warn({ service: this.opts.name, replica: r.address, method: last.method, err: (err as Error).message }, "replica left out: replaying the last weights load failed");
        if (codeOf(err) === grpc.status.UNAVAILABLE) this.resolvedAt = -Infinity;
        return false;
      } finally {
        r.syncing = undefined;
      }
    })();
    return r.syncing;
  }

  /**
   * The replicas that may take work now: the primary alone while the replicas differ, else every
   * replica holding the last broadcast (others are synced first).
   */
  private async usable(signal?: AbortSignal): Promise<Replica<C>[]> {
    const all = await this.current(signal);
    if (this.diverged) {
      const p = this.primary !== undefined ? this.replicas.get(this.primary) : undefined;
      if (!p) throw replicaError(grpc.status.FAILED_PRECONDITION, `${this.opts.name}: the replica ${this.primary} that holds the trained weights is gone; load them again`);
      return [p];
    }
    const ok = await Promise.all(all.map((r) => this.sync(r)));
    const ready = all.filter((_, i) => ok[i]);
    if (ready.length === 0) throw replicaError(grpc.status.UNAVAILABLE, `${this.opts.name}: no replica could load the current weights (${all.map((r) => r.address).join(", ")})`);
    if (this.primary === undefined || !ready.some((r) => r.address === this.primary)) this.primary = ready[0].address;
    return ready;
  }

  private count(r: Replica<C>): void {
    r.calls++;
    this.stats.set(r.address, (this.stats.get(r.address) ?? 0) + 1);
  }

  /** One replica for a call that goes to a single one: the primary for "mutate", else round-robin. */
  private async one(method: string, signal?: AbortSignal, mutate = this.route(method) === "mutate"): Promise<Replica<C>> {
    const ready = await this.usable(signal);
    if (mutate) {
      this.diverged = true;
      return ready.find((r) => r.address === this.primary) ?? ready[0];
    }
    return ready[this.next++ % ready.length];
  }

  /**
   * Calls `method` on `r`; on UNAVAILABLE (idempotent methods) or FAILED_PRECONDITION after a
   * broadcast (the replica restarted without its model), tries again on a usable replica.
   */
  private async callOne<R>(method: string, req: unknown, r: Replica<C>, call: CallOpts, tried: Set<string> = new Set()): Promise<R> {
    tried.add(r.address);
    this.count(r);
    try {
      return await (r.client.unary as (m: string, q: unknown, c: CallOpts) => Promise<R>)(method, req, call);
    } catch (err) {
      const code = codeOf(err);
      if (call.signal?.aborted || this.diverged) throw err;
      if (code === grpc.status.UNAVAILABLE && this.idempotent.has(method)) {
        this.resolvedAt = -Infinity; // gone? ask DNS again
      } else if (code === grpc.status.FAILED_PRECONDITION && this.generation > 0 && r.applied === this.generation && !tried.has(`resync:${r.address}`)) {
        tried.add(`resync:${r.address}`);
        tried.delete(r.address);
        r.applied = 0; // lost its weights (restarted): sync it again
      } else throw err;
      const other = (await this.usable(call.signal)).find((x) => !tried.has(x.address));
      if (!other) throw err;
      return this.callOne<R>(method, req, other, call, tried);
    }
  }

  /** A unary call, routed by its method's {@link Route}. */
  async unary<K extends UnaryMethod<C>>(method: K, req: UnaryReq<C, K>, call: CallOpts = {}): Promise<UnaryRes<C, K>> {
    const route = this.route(method);
    if (route === "broadcast") return this.broadcast(method, req, call) as Promise<UnaryRes<C, K>>;
    if (route === "every") return this.every(method, req, call) as Promise<UnaryRes<C, K>>;
    if (typeof route === "object") {
      const ready = await this.usable(call.signal);
      const sharder = route.shard as unknown as Sharder<UnaryReq<C, K>, UnaryRes<C, K>>;
      const parts = ready.length > 1 ? sharder.split(req, ready.length) : [req];
      if (parts.length === 1) return this.callOne(method, req, ready[this.next++ % ready.length], call);
      const start = this.next++;
      const results = await Promise.all(parts.map((p, i) => this.callOne<UnaryRes<C, K>>(method, p, ready[(start + i) % ready.length], call)));
      return sharder.merge(results);
    }
    return this.callOne(method, req, await this.one(method, call.signal), call);
  }

  /**
   * Calls `method` on every replica and remembers it for replicas that join later. Succeeds when
   * at least one replica took it and every other one is gone (UNAVAILABLE); any other failure is
   * the call's failure. Answers what the primary answered.
   */
  private async broadcast(method: string, req: unknown, call: CallOpts): Promise<unknown> {
    const all = await this.current(call.signal);
    const gen = ++this.generation;
    this.lastBroadcast = { method, req };
    this.diverged = false;
    const settled = await this.callEach(all, method, req, call, (r) => (r.applied = Math.max(r.applied, gen)));
    const held = all.filter((r) => r.applied >= gen);
    if (this.primary === undefined || !held.some((r) => r.address === this.primary)) this.primary = held[0].address;
    const i = all.findIndex((r) => r.address === this.primary);
    return (settled[i] as PromiseFulfilledResult<unknown>).value;
  }

  /**
   * Calls `method` on every replica, remembering nothing. Succeeds when at least one replica
   * answered and every other one is gone (UNAVAILABLE); answers what the primary (else the first)
   * answered.
   */
  private async every(method: string, req: unknown, call: CallOpts): Promise<unknown> {
    const all = await this.current(call.signal);
    const settled = await this.callEach(all, method, req, call);
    const i = all.findIndex((r, k) => r.address === this.primary && settled[k].status === "fulfilled");
    return ((i >= 0 ? settled[i] : settled.find((x) => x.status === "fulfilled")) as PromiseFulfilledResult<unknown>).value;
  }

  /**
   * Calls `method` on each of `all` (`onOk` after each success). Throws unless at least one
   * answered and every other one is gone (UNAVAILABLE: DNS is asked again); returns the outcomes
   * in `all`'s order.
   */
  private async callEach(all: Replica<C>[], method: string, req: unknown, call: CallOpts, onOk?: (r: Replica<C>) => void): Promise<PromiseSettledResult<unknown>[]> {
    const settled = await Promise.allSettled(
      all.map(async (r) => {
        this.count(r);
        const res = await (r.client.unary as (m: string, q: unknown, c: CallOpts) => Promise<unknown>)(method, req, call);
        onOk?.(r);
        return res;
      }),
    );
    const failures = settled.flatMap((s) => (s.status === "rejected" ? [s.reason as unknown] : []));
    const hard = failures.find((e) => codeOf(e) !== grpc.status.UNAVAILABLE);
    if (hard !== undefined) throw hard;
    if (failures.length === all.length) throw failures[0];
    if (failures.length) this.resolvedAt = -Infinity;
    return settled;
  }

  /** A server-streaming call on one replica (round-robin, or the primary); iterate it with `for await`. */
  serverStream<K extends ServerStreamMethod<C>>(method: K, req: ServerStreamReq<C, K>, call: CallOpts = {}): grpc.ClientReadableStream<ServerStreamRes<C, K>> {
    return deferredReadable(this.one(method, call.signal).then((r) => (this.count(r), r.client.serverStream(method, req, call))));
  }

  /** A client-streaming call on one replica (the primary for "mutate" methods such as Normalize). */
  clientStream<K extends ClientStreamMethod<C>>(method: K, call: CallOpts = {}): ClientStreamCall<ClientStreamReq<C, K>, ClientStreamRes<C, K>> {
    // A streamed weights upload reaches one replica only: like "mutate", the others differ after it.
    const mutate = this.route(method) === "mutate" || this.route(method) === "broadcast";
    const opening = this.one(method, call.signal, mutate).then((r) => {
      this.count(r);
      return r.client.clientStream(method, call);
    });
    opening.catch(() => undefined); // observed through write / end
    return {
      write: async (msg) => (await opening).write(msg),
      end: async () => (await opening).end(),
      cancel: () => void opening.then((c) => c.cancel(), () => undefined),
    };
  }

  /** A bidirectional call on one replica (the primary for "mutate" methods such as Train). */
  bidi<K extends BidiMethod<C>>(method: K, call: CallOpts = {}): grpc.ClientDuplexStream<BidiReq<C, K>, BidiRes<C, K>> {
    return new DeferredDuplex(this.one(method, call.signal).then((r) => (this.count(r), r.client.bidi(method, call)))) as unknown as grpc.ClientDuplexStream<BidiReq<C, K>, BidiRes<C, K>>;
  }

  close(): void {
    this.closed = true;
    for (const r of this.replicas.values()) r.client.close();
    this.replicas.clear();
  }
}

/** A readable that forwards the stream `opening` resolves to (its messages, end and error). */
function deferredReadable<R>(opening: Promise<grpc.ClientReadableStream<R>>): grpc.ClientReadableStream<R> {
  const out = new PassThrough({ objectMode: true });
  let inner: grpc.ClientReadableStream<R> | undefined;
  let cancelled = false;
  opening.then(
    (s) => {
      inner = s;
      s.on("error", (e) => out.destroy(e));
      s.pipe(out);
      if (cancelled) s.cancel();
    },
    (e: Error) => out.destroy(e),
  );
  return Object.assign(out, {
    cancel: () => {
      cancelled = true;
      inner?.cancel();
    },
    getPeer: () => inner?.getPeer() ?? "",
  }) as unknown as grpc.ClientReadableStream<R>;
}

/** A duplex that buffers writes until the call `opening` resolves to exists, then forwards both ways. */
class DeferredDuplex<Q, R> extends Duplex {
  private inner?: grpc.ClientDuplexStream<Q, R>;

  constructor(private readonly opening: Promise<grpc.ClientDuplexStream<Q, R>>) {
    super({ objectMode: true });
    opening.then(
      (s) => {
        this.inner = s;
        s.on("data", (d: R) => {
          if (!this.push(d)) s.pause();
        });
        s.on("end", () => this.push(null));
        s.on("error", (e) => this.destroy(e));
      },
      (e: Error) => this.destroy(e),
    );
  }

  override _read(): void {
    this.inner?.resume();
  }

  override _write(chunk: Q, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.opening.then((s) => (s.write(chunk) ? cb() : s.once("drain", () => cb())), cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.opening.then((s) => (s.end(), cb()), cb);
  }

  cancel(): void {
    this.opening.then((s) => s.cancel(), () => undefined);
  }

  getPeer(): string {
    return this.inner?.getPeer() ?? "";
  }
}

// ---- Sharding of the batch reads ----------------------------------------------------------------

/**
 * Cuts a TokenBatch into at most `parts` contiguous runs of whole sequences with about the same
 * number of tokens each (every run has at least one sequence); order is kept.
 */
export function splitTokenBatch(b: common.TokenBatch, parts: number): common.TokenBatch[] {
  const n = b.lengths.length;
  const k = Math.max(1, Math.min(parts, n));
  if (k === 1) return [b];
  const total = b.lengths.reduce((a, x) => a + x, 0);
  const out: common.TokenBatch[] = [];
  let seq = 0;
  let tok = 0;
  for (let p = 0; p < k; p++) {
    const first = seq;
    const firstTok = tok;
    const target = (total * (p + 1)) / k;
    // Take at least one sequence, leave at least one for each later part.
    do {
      tok += b.lengths[seq];
      seq++;
    } while (seq < n - (k - 1 - p) && tok + b.lengths[seq] / 2 <= target);
    if (p === k - 1) {
      while (seq < n) tok += b.lengths[seq++];
    }
    out.push({
      tokens: b.tokens.slice(firstTok, tok),
      lengths: b.lengths.slice(first, seq),
      promptLengths: b.promptLengths.length ? b.promptLengths.slice(first, seq) : [],
    });
  }
  return out;
}
