/**
 * Start-up and shutdown of a model service: the compute backend (gradients registered before any
 * training), the service's own parts (models, caches), the gRPC server with health and
 * reflection, health SERVING once the service can work, and a stop that drains the server before
 * it frees the parts.
 */
import { initBackend } from "@rlhf/compute";
import { descriptorSetPath } from "@rlhf/proto";
import { RunLease, SerialQueue, leaseInterceptor, runIdOf, serviceNameOf, startServer, unary, type CallContext, type Logger, type RunningServer, type ServiceRegistration } from "@rlhf/grpc-kit";
import { InvalidArgumentError } from "@rlhf/errors";
import { receiveBudget } from "@rlhf/tensor-transport";

/**
 * The health a service reports for itself, usable before its server is up: a model loaded at
 * start sets it, and the server starts with it.
 */
export class ServingFlag {
  private server?: RunningServer;
  private on = false;
  private blocked?: string;

  /** Reports SERVING (true) or NOT_SERVING, unless the work queue is stuck (then NOT_SERVING). */
  set(on: boolean): void {
    this.on = on;
    this.report();
  }

  /** The work queue is stuck behind `what` (NOT_SERVING meanwhile), or no longer (undefined). */
  stuck(what: string | undefined): void {
    this.blocked = what;
    this.report();
  }

  /** The server now reports what was set. */
  attach(server: RunningServer): void {
    this.server = server;
    this.report();
  }

  private report(): void {
    this.server?.setServing(this.on && this.blocked === undefined);
  }
}

/** What a service's `create` returns: its parts, the gRPC service that serves them, and how to free them. */
export interface ModelServiceParts<P> {
  /** The service's own objects, returned on the app (e.g. `model`, `queue`). */
  parts: P;
  service: ServiceRegistration;
  /** Frees the models once the server has stopped. */
  dispose(): void | Promise<void>;
  /**
   * The service is leased to one run at a time (@rlhf/grpc-kit lease.ts): its name in messages
   * and the methods that change the model. Its service then has a RunLease method.
   */
  lease?: { service: string; mutating: readonly string[] };
}

/** The process config every model service has (listen address, message limit). */
export interface ModelServiceConfig {
  host: string;
  port: number;
  maxReceiveBytes: number;
  /** MAX_UPLOAD_BYTES: also the bytes all tensor sets being received at once may hold together (the process's receive budget). */
  maxUploadBytes?: number;
  /** RUN_LEASE_TTL_MS (see ModelServiceParts.lease). Default 10 minutes. */
  runLeaseTtlMs?: number;
}

/** A running model service (used by its main.ts through runServiceMain, and by its tests). */
export type ModelServiceApp<P> = P & {
  server: RunningServer;
  /** Name of the compute backend in use. */
  backend: string;
  /** The run lease, for a service that has one. */
  lease?: RunLease;
  /** Frees the parts (after the server stopped). */
  dispose(): Promise<void>;
  /** Drains the server for at most `graceMs`, then frees the parts. */
  stop(graceMs?: number): Promise<void>;
};

/**
 * Picks the compute backend, builds the service with `create` (which loads its initial weights and
 * sets `serving` once it can work), starts the server and reports the health `serving` holds.
 */
export async function startModelService<P extends object>(
  cfg: ModelServiceConfig,
  log: Logger,
  create: (ctx: { backend: string; backendDetail: string; serving: ServingFlag }) => Promise<ModelServiceParts<P>>,
): Promise<ModelServiceApp<P>> {
  const backend = await initBackend({ log: (msg, fields) => log.info(fields ?? {}, msg) });
  if (cfg.maxUploadBytes !== undefined) receiveBudget.setLimit(cfg.maxUploadBytes);
  const serving = new ServingFlag();
  const built = await create({ backend: backend.name, backendDetail: backend.detail, serving });
  // A leased service: its RunLease method, and the interceptor that checks every call.
  const lease = built.lease ? new RunLease(built.lease.service, cfg.runLeaseTtlMs ?? 600_000, log) : undefined;
  const interceptors = [];
  if (lease && built.lease) {
    (built.service.implementation as Record<string, unknown>).runLease = unary(log, runLeaseHandler(lease));
    interceptors.push(leaseInterceptor(lease, serviceNameOf(built.service.definition), new Set(built.lease.mutating), log));
  }
  const server = await startServer({
    services: [built.service],
    log,
    host: cfg.host,
    port: cfg.port,
    maxReceiveMessageBytes: cfg.maxReceiveBytes,
    descriptorSetPath,
    interceptors,
  });
  serving.attach(server);
  // A file operation past its deadline holds the work queue: readiness says so until it ends.
  const queue = (built.service as { queue?: unknown }).queue;
  if (queue instanceof SerialQueue) {
    queue.onStuck = (what) => {
      serving.stuck(what);
      if (what === undefined) log.warn({}, "the work queue moves again");
      else log.error({ stuckOn: what }, "the work queue is stuck behind an operation past its deadline: NOT_SERVING until it ends");
    };
  }
  const dispose = async () => {
    await built.dispose();
  };
  return {
    ...built.parts,
    server,
    backend: backend.name,
    lease,
    dispose,
    stop: async (graceMs) => {
      await server.shutdown(graceMs);
      await dispose();
    },
  };
}

/**
 * RunLease (the same request and response in every model service's package): the interceptor
 * has already taken or renewed the lease for the call's run; `release` then gives it back.
 */
function runLeaseHandler(lease: RunLease) {
  return async (req: { release: boolean }, ctx: CallContext) => {
    const runId = runIdOf(ctx.metadata);
    if (req.release) {
      if (runId === undefined) throw new InvalidArgumentError("release", "a release names its run in the metadata x-rlhf-run-id");
      lease.release(runId);
    }
    return { lease: lease.state() };
  };
}
