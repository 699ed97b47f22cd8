/**
 * Rankings as the JSONL that `rlhf data check` and the recipe's `data.files.rankings` read:
 * `{"prompt", "responses", "ranking"}` per line, ranking[i] = number of responses strictly better
 * than response i (ties share the lowest rank of their group: `[0, 0, 2]`).
 */

/** The paper's flags on one response. */
export interface ResponseFlags {
  failsInstruction: boolean;
  madeUpFacts: boolean;
  harmful: boolean;
}

/** One labeler's ranking of one comparison. */
export interface LabeledRanking {
  batchId: string;
  /** The comparison's key in its batch. */
  key: string;
  prompt: string;
  responses: string[];
  /** ranking[i] = number of responses strictly better than responses[i]. */
  ranking: number[];
  /** 1..7 per response; null where none was given. */
  scores: (number | null)[];
  flags: ResponseFlags[];
  labeler: string;
  simulated: boolean;
  submittedAtMs: number;
  durationMs: number;
}

/** A record of the rankings JSONL format. */
export interface RankingsLine {
  prompt: string;
  responses: string[];
  ranking: number[];
}

/**
 * One JSON line per ranking. With `meta`, each line also carries `batch_id`, `key`, `labeler`,
 * `simulated`, `scores` and `flags` (fields `rlhf data check` ignores with a warning).
 */
export function rankingsToJsonl(rankings: readonly LabeledRanking[], opts: { meta?: boolean } = {}): string {
  return rankings
    .map((r) => {
      const line: Record<string, unknown> = { prompt: r.prompt, responses: r.responses, ranking: r.ranking };
      if (opts.meta) Object.assign(line, { batch_id: r.batchId, key: r.key, labeler: r.labeler, simulated: r.simulated, scores: r.scores, flags: r.flags });
      return JSON.stringify(line) + "\n";
    })
    .join("");
}

/**
 * The first ranking of each comparison (in submission order), in the batch's comparison order:
 * one ranking per prompt, as the in-process simulated labelers give. Comparisons not ranked yet
 * are left out.
 */
export function firstRankingPerComparison(keys: readonly string[], rankings: readonly LabeledRanking[]): LabeledRanking[] {
  const first = new Map<string, LabeledRanking>();
  for (const r of rankings) if (!first.has(r.key)) first.set(r.key, r);
  return keys.flatMap((k) => (first.has(k) ? [first.get(k) as LabeledRanking] : []));
}

/**
 * The distinct responses of a list (after trimming and collapsing whitespace, as the service
 * and `rlhf data check` compare them), and for each original response the index of its distinct
 * one: sampled responses repeat, a comparison holds each once.
 */
export function distinctResponses(responses: readonly string[]): { responses: string[]; indexOf: number[] } {
  const out: string[] = [];
  const seen = new Map<string, number>();
  const indexOf = responses.map((r) => {
    const key = r.trim().replace(/\s+/g, " ");
    let i = seen.get(key);
    if (i === undefined) {
      i = out.length;
      out.push(r);
      seen.set(key, i);
    }
    return i;
  });
  return { responses: out, indexOf };
}
