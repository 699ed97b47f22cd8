/**
 * A typed client of the labeling service (rlhf.labeling.v1): what the coordinator's rankings
 * stage and the `rlhf label` commands call. Domain types in, domain types out; every call has a
 * deadline; the idempotent calls (all of them: a batch is named by its id) are retried on
 * UNAVAILABLE / RESOURCE_EXHAUSTED / ABORTED.
 */
import * as grpc from "@grpc/grpc-js";
import { labeling } from "@rlhf/proto";
import { KitClient, type ClientOptions, type CallOpts } from "@rlhf/grpc-kit";
import { firstRankingPerComparison, type LabeledRanking } from "./jsonl";

/** One prompt with its K responses (2..16, distinct: see distinctResponses). */
export interface ComparisonToRank {
  /** Unique within the batch, 1..128 characters (e.g. the task id). */
  key: string;
  prompt: string;
  responses: string[];
}

/** Where a batch stands. */
export type BatchProgress = labeling.BatchProgress;

/** The service's limits and storage. */
export type LabelingInfo = labeling.GetInfoResponse;

/** Options of {@link LabelingClient}. */
export interface LabelingClientOptions extends Omit<ClientOptions, "idempotent" | "name"> {
  /** How long {@link LabelingClient.collectRankings} waits for people, in all. Default: no limit (7 days). */
  waitMs?: number;
}

const IDEMPOTENT = ["submitBatch", "getBatch", "listRankings", "listBatches", "getInfo"] as const;

/** The labeling service's client. */
export class LabelingClient {
  readonly kit: KitClient<labeling.LabelingServiceClient>;

  constructor(
    readonly address: string,
    private readonly opts: LabelingClientOptions = {},
  ) {
    this.kit = new KitClient(labeling.LabelingServiceClient, address, { deadlineMs: 60_000, ...opts, idempotent: IDEMPOTENT, name: "labeling" });
  }

  /** Submits a batch (idempotent by id: a second call with the same comparisons returns it as it stands). */
  async submitBatch(
    batchId: string,
    comparisons: readonly ComparisonToRank[],
    o: { overlapFraction?: number; source?: string } & CallOpts = {},
  ): Promise<{ progress: BatchProgress; created: boolean }> {
    const res = await this.kit.unary(
      "submitBatch",
      { batchId, comparisons: comparisons.map((c) => ({ key: c.key, prompt: c.prompt, responses: [...c.responses] })), overlapFraction: o.overlapFraction, source: o.source ?? "" },
      o,
    );
    return { progress: res.progress as BatchProgress, created: res.created };
  }

  /** A batch's progress. */
  async getBatch(batchId: string, o: CallOpts = {}): Promise<BatchProgress> {
    return (await this.kit.unary("getBatch", { batchId }, o)).progress as BatchProgress;
  }

  /** Batches, newest first. */
  async listBatches(limit = 100, o: CallOpts = {}): Promise<BatchProgress[]> {
    return (await this.kit.unary("listBatches", { limit }, o)).batches;
  }

  /** Storage, limits, the web UI's address. */
  getInfo(o: CallOpts = {}): Promise<LabelingInfo> {
    return this.kit.unary("getInfo", {}, o);
  }

  /**
   * Follows a batch until `untilRanked` comparisons are ranked (0: until every comparison has all
   * its rankings), calling `onProgress` at each change; resolves with the last progress. A stream
   * that breaks (the service restarted) is opened again, for as long as `deadlineMs` allows.
   */
  async waitForBatch(batchId: string, o: { untilRanked?: number; onProgress?: (p: BatchProgress) => void; signal?: AbortSignal; deadlineMs?: number } = {}): Promise<BatchProgress> {
    const end = Date.now() + (o.deadlineMs ?? this.opts.waitMs ?? 7 * 24 * 3600_000);
    const until = o.untilRanked ?? 0;
    const reached = (p: BatchProgress) => (until > 0 ? p.ranked >= until : p.done);
    let last: BatchProgress | undefined;
    for (let attempt = 0; ; attempt++) {
      try {
        const stream = this.kit.serverStream("watchBatch", { batchId, untilRanked: until }, { deadlineMs: Math.max(1, end - Date.now()), signal: o.signal });
        for await (const msg of stream as AsyncIterable<labeling.WatchBatchResponse>) {
          last = msg.progress as BatchProgress;
          o.onProgress?.(last);
        }
        if (last && reached(last)) return last;
      } catch (e) {
        const code = (e as grpc.ServiceError).code;
        if (o.signal?.aborted || Date.now() >= end) throw e;
        if (code !== grpc.status.UNAVAILABLE && code !== grpc.status.CANCELLED && code !== grpc.status.INTERNAL) throw e;
      }
      // The stream ended early (the service went away): wait a little, then watch again.
      await new Promise((r) => setTimeout(r, Math.min(5000, 200 * 2 ** Math.min(attempt, 5))));
    }
  }

  /** Every ranking (of one batch when given), in submission order. */
  async listRankings(batchId = "", o: CallOpts = {}): Promise<LabeledRanking[]> {
    const out: LabeledRanking[] = [];
    let pageToken = "";
    do {
      const res = await this.kit.unary("listRankings", { batchId, pageSize: 1000, pageToken }, o);
      for (const r of res.rankings) {
        out.push({
          batchId: r.batchId,
          key: r.comparisonKey,
          prompt: r.prompt,
          responses: r.responses,
          ranking: r.ranking,
          scores: r.scores.map((s) => (s === 0 ? null : s)),
          flags: r.flags.map((f) => ({ failsInstruction: f.failsInstruction, madeUpFacts: f.madeUpFacts, harmful: f.harmful })),
          labeler: r.labeler,
          simulated: r.simulated,
          submittedAtMs: r.submittedAtMs,
          durationMs: r.durationMs,
        });
      }
      pageToken = res.nextPageToken;
    } while (pageToken);
    return out;
  }

  /**
   * What the recipe's rankings stage calls: submits the batch (or finds it, when a resumed run
   * submits it again), waits until `minRanked` comparisons are ranked (default all of them), and
   * returns one ranking per ranked comparison in the batch's order (the first submitted, as the
   * in-process simulated labelers give one), plus every ranking (overlapping comparisons have
   * two). Safe to call again after an interruption: nothing is submitted twice.
   */
  async collectRankings(
    batchId: string,
    comparisons: readonly ComparisonToRank[],
    o: { minRanked?: number; overlapFraction?: number; source?: string; onProgress?: (p: BatchProgress) => void; signal?: AbortSignal } = {},
  ): Promise<{ rankings: LabeledRanking[]; all: LabeledRanking[]; progress: BatchProgress }> {
    const submitted = await this.submitBatch(batchId, comparisons, { overlapFraction: o.overlapFraction, source: o.source, signal: o.signal });
    o.onProgress?.(submitted.progress);
    const progress = await this.waitForBatch(batchId, { untilRanked: o.minRanked ?? comparisons.length, onProgress: o.onProgress, signal: o.signal });
    const all = await this.listRankings(batchId, { signal: o.signal });
    return { rankings: firstRankingPerComparison(comparisons.map((c) => c.key), all), all, progress };
  }

  close(): void {
    this.kit.close();
  }
}
