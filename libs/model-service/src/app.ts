/**
 * Start-up and shutdown of a model service: the compute backend (gradients registered before any
 * training), the service's own parts (models, caches), the gRPC server with health and
 * reflection, health SERVING once the service can work, and a stop that drains the server before
 * it frees the parts.
 */
import { initBackend } from "@rlhf/compute";
import { descriptorSetPath } from "@rlhf/proto";
import { startServer, type Logger, type RunningServer, type ServiceRegistration } from "@rlhf/grpc-kit";
import { receiveBudget } from "@rlhf/tensor-transport";

/**
 * The health a service reports for itself, usable before its server is up: a model loaded at
 * start sets it, and the server starts with it.
 */
export class ServingFlag {
  private server?: RunningServer;
  private on = false;

  /** Reports SERVING (true) or NOT_SERVING. */
  set(on: boolean): void {
    this.on = on;
    this.server?.setServing(on);
  }

  /** The server now reports what was set. */
  attach(server: RunningServer): void {
    this.server = server;
    server.setServing(this.on);
  }
}

/** What a service's `create` returns: its parts, the gRPC service that serves them, and how to free them. */
export interface ModelServiceParts<P> {
  /** The service's own objects, returned on the app (e.g. `model`, `queue`). */
  parts: P;
  service: ServiceRegistration;
  /** Frees the models once the server has stopped. */
  dispose(): void | Promise<void>;
}

/** The process config every model service has (listen address, message limit). */
export interface ModelServiceConfig {
  host: string;
  port: number;
  maxReceiveBytes: number;
  /** MAX_UPLOAD_BYTES: also the bytes all tensor sets being received at once may hold together (the process's receive budget). */
  maxUploadBytes?: number;
}

/** A running model service (used by its main.ts through runServiceMain, and by its tests). */
export type ModelServiceApp<P> = P & {
  server: RunningServer;
  /** Name of the compute backend in use. */
  backend: string;
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
  const server = await startServer({
    services: [built.service],
    log,
    host: cfg.host,
    port: cfg.port,
    maxReceiveMessageBytes: cfg.maxReceiveBytes,
    descriptorSetPath,
  });
  serving.attach(server);
  const dispose = async () => {
    await built.dispose();
  };
  return {
    ...built.parts,
    server,
    backend: backend.name,
    dispose,
    stop: async (graceMs) => {
      await server.shutdown(graceMs);
      await dispose();
    },
  };
}
