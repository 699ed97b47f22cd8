/**
 * Start-up and shutdown of a model service: its compute worker (the compute backend, the models,
 * the handlers: ./worker), the gRPC server with health, reflection and the run lease in the main
 * thread, health SERVING once the service can work, and a stop that drains the server before it
 * frees the worker.
 */
import { descriptorSetPath } from "@rlhf/proto";
import { RunLease, leaseInterceptor, runIdOf, serviceNameOf, startServer, unary, type CallContext, type Logger, type RunningServer, type ServiceRegistration } from "@rlhf/grpc-kit";
import { InvalidArgumentError } from "@rlhf/errors";
import type { ServiceDefinition } from "@grpc/grpc-js";
import { ComputeWorker, type Serving } from "./worker/host";

/**
 * The health a service reports for itself, usable before its server is up: a model loaded at
 * start sets it, and the server starts with it.
 */
export class ServingFlag implements Serving {
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

/**
 * A service leased to one run at a time (@rlhf/grpc-kit lease.ts): its name in messages and the
 * methods that change the model. Its service then has a RunLease method, served by the main thread.
 */
export interface LeaseSpec {
  service: string;
  mutating: readonly string[];
}

/** The process config every model service has (listen address, message limit). */
export interface ModelServiceConfig {
  host: string;
  port: number;
  maxReceiveBytes: number;
  /** MAX_UPLOAD_BYTES: also the bytes all tensor sets being received at once may hold together (the process's receive budget). */
  maxUploadBytes?: number;
  /** RUN_LEASE_TTL_MS (see LeaseSpec). Default 10 minutes. */
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

/** A running {@link startWorkerModelService} service: `died` resolves, with the reason, if its compute worker stops unasked. */
export type WorkerModelServiceApp<P extends object = object> = ModelServiceApp<P> & {
  died: Promise<string>;
  /** The compute worker's live tensors (tf.memory()): what a leak check reads. */
  memory(): Promise<{ numTensors: number; numBytes: number }>;
};

/** What {@link startWorkerModelService} runs in the main thread. */
export interface WorkerServiceSpec<P> {
  /** The gRPC service the worker's module implements (its RunLease, if leased, is served here). */
  definition: ServiceDefinition;
  /** The module that builds the models and handlers in the worker (see ./worker/host.ts CreateCompute), as {@link siblingModule} names it. */
  module: string;
  exportName?: string;
  /**
   * Unary methods with an empty request answered by the main thread from the worker's latest
   * answer (refreshed as calls start and end, and twice a second between steps), so that they
   * answer at once during a long step: `getInfo`.
   */
  snapshots?: readonly string[];
  lease?: LeaseSpec;
  /** Parts of the main thread (e.g. an event publisher), returned on the app. */
  parts?: P;
  /** What the worker's `notify` sent. */
  onNotice?(notice: unknown): void;
  /** Frees the main thread's parts, after the worker's. */
  dispose?(): void | Promise<void>;
}

/**
 * A model service whose models and handlers live in a compute worker thread (./worker): the main
 * thread keeps the gRPC server, health, reflection, the run lease and cancellation, so that they
 * answer at once during any forward or backward pass, on any backend. Health is SERVING once the
 * worker's module reports a model in place; NOT_SERVING when its work queue is stuck, and for
 * good if the worker dies (every call then fails with INTERNAL, and `died` resolves: the process
 * should exit so that it is restarted).
 */
export async function startWorkerModelService<P extends object = object, C extends ModelServiceConfig = ModelServiceConfig>(
  cfg: C,
  log: Logger,
  spec: WorkerServiceSpec<P>,
): Promise<WorkerModelServiceApp<P>> {
  const serving = new ServingFlag();
  let markDied: (reason: string) => void = () => undefined;
  const died = new Promise<string>((r) => (markDied = r));
  const worker = await ComputeWorker.start({
    module: spec.module,
    exportName: spec.exportName,
    snapshots: spec.snapshots,
    cfg,
    service: (log.bindings().service as string | undefined) ?? "model-service",
    log,
    onServing: (on) => serving.set(on),
    onStuck: (what) => {
      // A file operation past its deadline holds the work queue: readiness says so until it ends.
      serving.stuck(what);
      if (what === undefined) log.warn({}, "the work queue moves again");
      else log.error({ stuckOn: what }, "the work queue is stuck behind an operation past its deadline: NOT_SERVING until it ends");
    },
    onNotice: spec.onNotice,
    onDied: (reason) => {
      log.error({ reason }, "the compute worker stopped: NOT_SERVING; every call fails until the service is restarted");
      serving.set(false);
      markDied(reason);
    },
  });
  let app: Awaited<ReturnType<typeof serve>>;
  try {
    const implementation = worker.implementation(spec.definition, log, spec.lease ? ["runLease"] : []);
    app = await serve(cfg, log, { definition: spec.definition, implementation }, serving, spec.lease);
  } catch (err) {
    await worker.dispose();
    throw err;
  }
  const dispose = async () => {
    await worker.dispose();
    await spec.dispose?.();
  };
  return {
    ...((spec.parts ?? {}) as P),
    server: app.server,
    backend: worker.backend,
    lease: app.lease,
    died,
    memory: () => worker.memory(),
    dispose,
    stop: async (graceMs) => {
      await app.server.shutdown(graceMs);
      await dispose();
    },
  };
}

/** The server of a model service: its service, with the run lease if it has one, health from `serving`. */
async function serve(cfg: ModelServiceConfig, log: Logger, service: ServiceRegistration, serving: ServingFlag, leaseSpec: LeaseSpec | undefined) {
  // A leased service: its RunLease method, and the interceptor that checks every call.
  const lease = leaseSpec ? new RunLease(leaseSpec.service, cfg.runLeaseTtlMs ?? 600_000, log) : undefined;
  const interceptors = [];
  if (lease && leaseSpec) {
    (service.implementation as Record<string, unknown>).runLease = unary(log, runLeaseHandler(lease));
    interceptors.push(leaseInterceptor(lease, serviceNameOf(service.definition), new Set(leaseSpec.mutating), log));
  }
  const server = await startServer({
    services: [service],
    log,
    host: cfg.host,
    port: cfg.port,
    maxReceiveMessageBytes: cfg.maxReceiveBytes,
    descriptorSetPath,
    interceptors,
  });
  serving.attach(server);
  return { server, lease };
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
