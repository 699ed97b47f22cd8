import type { labeling } from "@rlhf/proto";
import { MAX_RESPONSES, MIN_RESPONSES, type Limits } from "../domain/comparisons";
import type { LabelingStore } from "../store/store";

/** GetInfo: storage, limits and the web UI's address. */
export function getInfoHandler(store: LabelingStore, limits: Limits, overlapFraction: number, webUrl: () => string) {
  return async (): Promise<labeling.GetInfoResponse> => ({
    storage: store.kind,
    schemaVersion: store.schemaVersion,
    minResponses: MIN_RESPONSES,
    maxResponses: MAX_RESPONSES,
    maxTextChars: limits.maxTextChars,
    maxBatchComparisons: limits.maxBatchComparisons,
    overlapFraction,
    webUrl: webUrl(),
  });
}
