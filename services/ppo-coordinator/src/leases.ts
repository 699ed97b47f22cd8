/**
 * A run's leases on the model services (@rlhf/grpc-kit lease.ts): taken before the run starts
 * (StartRun / ResumeRun answer FAILED_PRECONDITION naming the holder when another run holds one),
 * renewed while it runs (a stage can leave a service without calls for longer than its lease
 * lasts), given back before the run records its end, so that the next run can start at once.
 */
import * as grpc from "@grpc/grpc-js";
import { forRun, isServiceError, statusName, type Logger, type ServiceClient } from "@rlhf/grpc-kit";
import { outsideTraces } from "@rlhf/telemetry";
import type { common, policy as policyPb, referenceModel, rewardModel } from "@rlhf/proto";
import type { Clients } from "./recipe/gateway";

/** A running run renews its leases three times per lease lifetime (RUN_LEASE_TTL_MS, the shortest the services report). */
const RENEWALS_PER_TTL = 3;
/** Deadline of one lease call (also of a scaled-out service's wait for a first replica). */
const LEASE_CALL_MS = 10_000;

type Leased = ServiceClient<policyPb.PolicyServiceClient> | ServiceClient<rewardModel.RewardModelServiceClient> | ServiceClient<referenceModel.ReferenceModelServiceClient>;

export class RunLeases {
  private readonly services: [string, Leased][];
  private timer?: NodeJS.Timeout;
  /** The shortest lease lifetime the services reported. */
  private ttlMs = 600_000;

  constructor(
    clients: Clients,
    private readonly runId: string,
    private readonly log: Logger,
  ) {
    this.services = [
      ["policy", forRun(clients.policy, runId)],
      ["reward-model", forRun(clients.rewardModel, runId)],
      ["reference-model", forRun(clients.reference, runId)],
    ];
  }

  private call(c: Leased, release: boolean): Promise<{ lease?: common.RunLease }> {
    return (c.unary as (m: string, req: unknown, o: object) => Promise<{ lease?: common.RunLease }>)("runLease", { release }, { deadlineMs: LEASE_CALL_MS, signal: AbortSignal.timeout(LEASE_CALL_MS) });
  }

  /** A run's leases, taken; on a refusal none is kept (see {@link acquire}). */
  static async take(clients: Clients, runId: string, log: Logger): Promise<RunLeases> {
    const leases = new RunLeases(clients, runId, log);
    try {
      await leases.acquire();
    } catch (e) {
      await leases.release();
      throw e;
    }
    return leases;
  }

  /**
   * Takes (or renews) the three leases. A service leased to another run: its FAILED_PRECONDITION
   * (naming the holder) is thrown. A service that does not answer is left to the run's first call
   * to it, which names it when it fails.
   */
  async acquire(): Promise<void> {
    const settled = await Promise.allSettled(this.services.map(([, c]) => this.call(c, false)));
    settled.forEach((s, i) => {
      if (s.status === "fulfilled") {
        const ttl = s.value.lease?.ttlMs ?? 0;
        if (ttl > 0) this.ttlMs = Math.min(this.ttlMs, ttl);
        return;
      }
      const e = s.reason as unknown;
      if (isServiceError(e) && e.code === grpc.status.FAILED_PRECONDITION) throw e;
      this.log.warn({ service: this.services[i][0], code: isServiceError(e) ? statusName(e.code) : undefined, err: (e as Error).message }, "could not take the run lease");
    });
  }

  /**
   * Renews the leases a few times per lease lifetime until {@link release}; outside the run's
   * trace (the renewals are no part of the recipe).
   */
  keepAlive(): void {
    this.timer ??= outsideTraces(() =>
      setInterval(() => {
        void this.acquire().catch((e: Error) => this.log.error({ runId: this.runId, err: e.message }, "run lease lost"));
      }, Math.max(1000, Math.floor(this.ttlMs / RENEWALS_PER_TTL))).unref(),
    );
  }

  /** Gives the leases back (never throws: a service that is gone lets its lease lapse). */
  async release(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    const settled = await Promise.allSettled(this.services.map(([, c]) => this.call(c, true)));
    settled.forEach((s, i) => {
      const e = s.status === "rejected" ? (s.reason as unknown) : undefined;
      // FAILED_PRECONDITION: another run holds it (a refused start): nothing of ours to give back.
      if (e !== undefined && !(isServiceError(e) && e.code === grpc.status.FAILED_PRECONDITION)) this.log.warn({ runId: this.runId, service: this.services[i][0], err: (e as Error).message }, "could not give the run lease back");
    });
  }
}
