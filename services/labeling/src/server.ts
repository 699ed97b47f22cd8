import { labeling } from "@rlhf/proto";
import { serverStream, unary, type Logger, type ServiceRegistration } from "@rlhf/grpc-kit";
import type { Limits } from "./domain/comparisons";
import type { LabelingStore } from "./store/store";
import { getBatchHandler, listBatchesHandler, listRankingsHandler, submitBatchHandler, watchBatchHandler } from "./handlers/batches";
import { getInfoHandler } from "./handlers/get-info";

/** Maps the generated LabelingService to its handlers. */
export function labelingService(store: LabelingStore, limits: Limits, overlapFraction: number, webUrl: () => string, log: Logger): ServiceRegistration {
  const implementation: labeling.LabelingServiceServer = {
    submitBatch: unary(log, submitBatchHandler(store, limits, overlapFraction)),
    getBatch: unary(log, getBatchHandler(store)),
    watchBatch: serverStream(log, watchBatchHandler(store)),
    listRankings: unary(log, listRankingsHandler(store)),
    listBatches: unary(log, listBatchesHandler(store)),
    getInfo: unary(log, getInfoHandler(store, limits, overlapFraction, webUrl)),
  };
  return { definition: labeling.LabelingServiceService, implementation };
}
