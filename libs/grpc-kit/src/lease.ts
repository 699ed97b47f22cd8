/**
 * One run per model service. A caller names the run its call belongs to with the metadata
 * `x-rlhf-run-id` (the coordinator does on every call of a run). A service with a {@link RunLease}
 * is held by one run at a time:
 * - a call naming a run takes the lease when the service is free, or when its holder has made no
 *   call for the TTL (a coordinator that died), and renews it when that run holds it;
 * - a call naming another run is refused with FAILED_PRECONDITION naming the holder;
 * - a call without a run id is served, unless it would change the model while a run holds the
 *   service (then FAILED_PRECONDITION too): reads from anyone's own client always work.
 * The check runs as a server interceptor, after authentication and before the handler: a refused
 * call reads no request and changes nothing. The RunLease method (each model service's) reports
 * the lease, and gives it back for its holder when the run ends.
 */
import * as grpc from "@grpc/grpc-js";
import { InvalidArgumentError, isRunId, RUN_ID_RULE } from "@rlhf/errors";
import type { Logger } from "pino";
import type { CallOpts } from "./client";
import { metadataInterceptor, type Refusal } from "./intercept";
import type { ServiceClient } from "./replicas";

/** The metadata key naming the run a call belongs to. */
export const RUN_ID_METADATA = "x-rlhf-run-id";

/** `md` (a copy) naming run `runId`. */
export function withRunId(md: grpc.Metadata | undefined, runId: string): grpc.Metadata {
  const out = md ? md.clone() : new grpc.Metadata();
  out.set(RUN_ID_METADATA, runId);
  return out;
}

/** The run a call names (undefined: none); INVALID_ARGUMENT for a malformed one. */
export function runIdOf(md: grpc.Metadata): string | undefined {
  const v = md.get(RUN_ID_METADATA);
  if (v.length === 0) return undefined;
  const s = v.length === 1 && typeof v[0] === "string" ? v[0] : undefined;
  if (s === undefined || !isRunId(s)) throw new InvalidArgumentError(`metadata ${RUN_ID_METADATA}`, `must be one value of ${RUN_ID_RULE}, got ${JSON.stringify(String(v[0]).slice(0, 80))}${v.length > 1 ? ` and ${v.length - 1} more` : ""}`);
  return s;
}

/** What a lease reports (rlhf.common.v1.RunLease). */
export interface RunLeaseState {
  holder: string;
  heldMs: number;
  idleMs: number;
  ttlMs: number;
}

const seconds = (ms: number) => (ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`);

/** The lease of one model service (see the module comment). */
export class RunLease {
  private holder?: { runId: string; since: number; last: number };

  constructor(
    /** The service's name in messages ("policy"). */
    readonly service: string,
    readonly ttlMs: number,
    private readonly log?: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** The holder, unless it lapsed (then the lease is dropped). */
  private live(): { runId: string; since: number; last: number } | undefined {
    if (this.holder && this.now() - this.holder.last > this.ttlMs) {
      this.log?.warn({ runId: this.holder.runId, idleMs: this.now() - this.holder.last, ttlMs: this.ttlMs }, "run lease lapsed");
      this.holder = undefined;
    }
    return this.holder;
  }

  /**
   * Admits a call of `method` naming `runId` (or none), which changes the model when `mutating`:
   * takes or renews the lease, or returns why the call is refused (FAILED_PRECONDITION).
   */
  admit(method: string, runId: string | undefined, mutating: boolean): string | undefined {
    const h = this.live();
    const t = this.now();
    if (runId !== undefined) {
      if (!h) {
        this.holder = { runId, since: t, last: t };
        this.log?.info({ runId, method }, "leased to a run");
        return undefined;
      }
      if (h.runId === runId) {
        h.last = t;
        return undefined;
      }
      return `${this.service} is leased to run ${h.runId} (${this.describe(h)}): ${method} of run ${runId} refused`;
    }
    if (mutating && h) return `${this.service} is leased to run ${h.runId} (${this.describe(h)}): ${method} changes the model and is refused without metadata ${RUN_ID_METADATA} naming that run`;
    return undefined;
  }

  private describe(h: { since: number; last: number }): string {
    const t = this.now();
    return `held ${seconds(t - h.since)}, last call ${seconds(t - h.last)} ago; it lapses after RUN_LEASE_TTL_MS = ${this.ttlMs} ms without one, or when that run ends`;
  }

  /** Gives the lease back if `runId` holds it; true when it did. */
  release(runId: string): boolean {
    const h = this.live();
    if (h?.runId !== runId) return false;
    this.log?.info({ runId, heldMs: this.now() - h.since }, "lease given back");
    this.holder = undefined;
    return true;
  }

  state(): RunLeaseState {
    const h = this.live();
    const t = this.now();
    return h ? { holder: h.runId, heldMs: t - h.since, idleMs: t - h.last, ttlMs: this.ttlMs } : { holder: "", heldMs: 0, idleMs: 0, ttlMs: this.ttlMs };
  }
}

/**
 * A server interceptor enforcing `lease` on the methods of `serviceName` (`mutating`: the method
 * names that change the model, e.g. "Sft"); health and reflection pass untouched.
 */
export function leaseInterceptor(lease: RunLease, serviceName: string, mutating: ReadonlySet<string>, log?: Logger): grpc.ServerInterceptor {
  const prefix = `/${serviceName}/`;
  return metadataInterceptor((path, md) => {
    if (!path.startsWith(prefix)) return undefined;
    const name = path.slice(prefix.length);
    let refusal: Refusal | undefined;
    try {
      const why = lease.admit(name, runIdOf(md), mutating.has(name));
      if (why) refusal = { code: grpc.status.FAILED_PRECONDITION, details: why };
    } catch (e) {
      refusal = { code: grpc.status.INVALID_ARGUMENT, details: (e as Error).message };
    }
    if (refusal) log?.warn({ method: path, code: grpc.status[refusal.code], reason: refusal.details }, "rpc refused");
    return refusal;
  });
}

/** The call methods of a KitClient or ReplicaSet. */
type CallMethods = keyof ServiceClient<grpc.Client>;

/** `client` with every call naming run `runId` (what a coordinator's run calls through). */
export function forRun<T extends { close(): void }>(client: T, runId: string): Pick<T, CallMethods & keyof T> {
  const opts = (call: CallOpts = {}): CallOpts => ({ ...call, metadata: withRunId(call.metadata, runId) });
  const c = client as unknown as Record<"unary" | "serverStream", (m: string, req: unknown, call?: CallOpts) => unknown> & Record<"clientStream" | "bidi", (m: string, call?: CallOpts) => unknown>;
  const named = {
    unary: (m: string, req: unknown, call?: CallOpts) => c.unary(m, req, opts(call)),
    serverStream: (m: string, req: unknown, call?: CallOpts) => c.serverStream(m, req, opts(call)),
    clientStream: (m: string, call?: CallOpts) => c.clientStream(m, opts(call)),
    bidi: (m: string, call?: CallOpts) => c.bidi(m, opts(call)),
    close: () => client.close(),
  };
  return named as unknown as Pick<T, CallMethods & keyof T>;
}
