import { ppoCoordinator } from "@rlhf/proto";
import { unary, serverStream, type Logger, type ServiceRegistration, type Send, type CallContext } from "@rlhf/grpc-kit";
import type { RunStore } from "./runs";

/** WatchRun: the stored events, then live ones until the run is terminal or the client leaves. */
function watchHandler(store: RunStore) {
  return async (req: ppoCoordinator.WatchRunRequest, send: Send<ppoCoordinator.WatchRunResponse>, ctx: CallContext): Promise<void> => {
    const queue: ppoCoordinator.RunEvent[] = [];
    let wake: (() => void) | undefined;
    const w = store.watch(req.runId, req.afterSequence, (e) => {
      queue.push(e);
      wake?.();
    });
    const terminal = (e: ppoCoordinator.RunEvent) =>
      e.payload?.$case === "stateChanged" &&
      [ppoCoordinator.RunState.RUN_STATE_SUCCEEDED, ppoCoordinator.RunState.RUN_STATE_FAILED, ppoCoordinator.RunState.RUN_STATE_CANCELLED].includes(e.payload.stateChanged.toState);
    // One abort listener for the whole call (not one per wait).
    const onAbort = () => wake?.();
    ctx.signal.addEventListener("abort", onAbort, { once: true });
    try {
      let last = req.afterSequence;
      for (const e of w.replay) {
        await send({ event: e });
        last = e.sequence;
      }
      if (w.terminal) return;
      for (;;) {
        while (queue.length > 0) {
          const e = queue.shift() as ppoCoordinator.RunEvent;
          if (e.sequence <= last) continue;
          last = e.sequence;
          await send({ event: e });
          if (terminal(e)) return;
        }
        if (ctx.signal.aborted) return;
        await new Promise<void>((r) => {
          wake = r;
        });
        wake = undefined;
      }
    } finally {
      ctx.signal.removeEventListener("abort", onAbort);
      w.unsubscribe();
    }
  };
}

/** Maps the generated PpoCoordinatorService to the run store. */
export function coordinatorService(store: RunStore, log: Logger): ServiceRegistration {
  const implementation: ppoCoordinator.PpoCoordinatorServiceServer = {
    startRun: unary(log, async (req: ppoCoordinator.StartRunRequest) => ({ run: await store.start(req) })),
    getRun: unary(log, async (req: ppoCoordinator.GetRunRequest) => ({ run: store.get(req.runId) })),
    listRuns: unary(log, async (req: ppoCoordinator.ListRunsRequest) => store.list(req)),
    cancelRun: unary(log, async (req: ppoCoordinator.CancelRunRequest) => ({ run: await store.cancel(req.runId) })),
    resumeRun: unary(log, async (req: ppoCoordinator.ResumeRunRequest) => ({ run: await store.resume(req.runId) })),
    watchRun: serverStream(log, watchHandler(store)),
  };
  return { definition: ppoCoordinator.PpoCoordinatorServiceService, implementation };
}
