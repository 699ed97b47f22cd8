import type { labeling } from "@rlhf/proto";
import type { CallContext, Send } from "@rlhf/grpc-kit";
import { InvalidArgumentError } from "@rlhf/errors";
import { BATCH_ID_PATTERN, checkBatch, type Limits } from "../domain/comparisons";
import type { BatchProgress, LabelingStore, StoredRanking } from "../store/store";

/** Domain progress -> proto. */
export function toProgress(p: BatchProgress): labeling.BatchProgress {
  return { ...p };
}

function batchIdOf(id: string): string {
  if (!BATCH_ID_PATTERN.test(id)) throw new InvalidArgumentError("batch_id", `must be 1..64 characters of [A-Za-z0-9._:-], got "${id.slice(0, 80)}"`);
  return id;
}

/** SubmitBatch: check the limits, store (idempotent by id). */
export function submitBatchHandler(store: LabelingStore, limits: Limits, defaultOverlap: number) {
  return async (req: labeling.SubmitBatchRequest, ctx: CallContext): Promise<labeling.SubmitBatchResponse> => {
    const input = {
      batchId: req.batchId,
      comparisons: req.comparisons.map((c) => ({ key: c.key, prompt: c.prompt, responses: c.responses })),
      overlapFraction: req.overlapFraction ?? defaultOverlap,
      source: req.source,
    };
    checkBatch(input, limits);
    const r = await store.submitBatch(input);
    ctx.log.info({ batchId: input.batchId, comparisons: input.comparisons.length, created: r.created }, "batch submitted");
    return { progress: toProgress(r.progress), created: r.created };
  };
}

/** GetBatch. */
export function getBatchHandler(store: LabelingStore) {
  return async (req: labeling.GetBatchRequest): Promise<labeling.GetBatchResponse> => ({ progress: toProgress(await store.progress(batchIdOf(req.batchId))) });
}

/** ListBatches. */
export function listBatchesHandler(store: LabelingStore) {
  return async (req: labeling.ListBatchesRequest): Promise<labeling.ListBatchesResponse> => {
    if (req.limit > 1000) throw new InvalidArgumentError("limit", `must be at most 1000, got ${req.limit}`);
    return { batches: (await store.listBatches(req.limit || 100)).map(toProgress) };
  };
}

/** How often WatchBatch looks at the database besides this process's own changes (another replica may write). */
export const WATCH_POLL_MS = 2000;

/** WatchBatch: the progress now, then after every change, until the target is reached. */
export function watchBatchHandler(store: LabelingStore) {
  return async (req: labeling.WatchBatchRequest, send: Send<labeling.WatchBatchResponse>, ctx: CallContext): Promise<void> => {
    const batchId = batchIdOf(req.batchId);
    let p = await store.progress(batchId);
    if (req.untilRanked > p.comparisons) throw new InvalidArgumentError("until_ranked", `${req.untilRanked} is more than the batch's ${p.comparisons} comparisons`);
    const reached = (x: BatchProgress) => (req.untilRanked > 0 ? x.ranked >= req.untilRanked : x.done);
    await send({ progress: toProgress(p) });
    let wake: (() => void) | undefined;
    const onChange = (id: string) => id === batchId && wake?.();
    store.events.on("change", onChange);
    try {
      while (!reached(p)) {
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(t);
            ctx.signal.removeEventListener("abort", done);
            resolve();
          };
          // A watch may last hours: each wait removes its abort listener again.
          const t = setTimeout(done, WATCH_POLL_MS);
          wake = done;
          ctx.signal.addEventListener("abort", done, { once: true });
        });
        if (ctx.signal.aborted) return;
        const next = await store.progress(batchId);
        if (JSON.stringify(next) !== JSON.stringify(p)) await send({ progress: toProgress(next) });
        p = next;
      }
    } finally {
      store.events.off("change", onChange);
    }
  };
}

/** Most rankings per ListRankings page; a page also ends past about {@link PAGE_BYTES}. */
export const MAX_PAGE_SIZE = 1000;
export const PAGE_BYTES = 2 * 1024 * 1024;

function encodeToken(seq: number): string {
  return Buffer.from(`seq:${seq}`).toString("base64url");
}

function decodeToken(t: string): number {
  if (t === "") return 0;
  const m = /^seq:(\d{1,15})$/.exec(Buffer.from(t, "base64url").toString("utf8"));
  if (!m) throw new InvalidArgumentError("page_token", "is not a token from a previous response");
  return Number(m[1]);
}

/** Domain ranking -> proto. */
export function toRanking(r: StoredRanking): labeling.Ranking {
  return {
    batchId: r.batchId,
    comparisonKey: r.key,
    prompt: r.prompt,
    responses: r.responses,
    ranking: r.ranking,
    scores: r.scores.map((s) => s ?? 0),
    flags: r.flags,
    labeler: r.labeler,
    simulated: r.simulated,
    submittedAtMs: r.submittedAtMs,
    durationMs: r.durationMs,
  };
}

/** ListRankings: submission order, paged by the last sequence number seen. */
export function listRankingsHandler(store: LabelingStore) {
  return async (req: labeling.ListRankingsRequest): Promise<labeling.ListRankingsResponse> => {
    if (req.pageSize > MAX_PAGE_SIZE) throw new InvalidArgumentError("page_size", `must be at most ${MAX_PAGE_SIZE}, got ${req.pageSize}`);
    const batchId = req.batchId === "" ? undefined : batchIdOf(req.batchId);
    if (batchId) await store.progress(batchId); // NOT_FOUND for an unknown batch
    const size = req.pageSize || 100;
    const rows = await store.listRankings({ batchId, afterSeq: decodeToken(req.pageToken), limit: size });
    const out: labeling.Ranking[] = [];
    let bytes = 0;
    for (const r of rows) {
      const msg = toRanking(r);
      bytes += r.prompt.length + r.responses.reduce((a, s) => a + s.length, 0) + 64;
      if (out.length > 0 && bytes > PAGE_BYTES) break;
      out.push(msg);
    }
    const more = out.length < rows.length || rows.length === size;
    return { rankings: out, nextPageToken: more && out.length ? encodeToken(rows[out.length - 1].seq) : "" };
  };
}
