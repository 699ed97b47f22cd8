import type { rewardModel } from "@rlhf/proto";
import { InvalidArgumentError } from "@rlhf/errors";
import { splitRows, type GPT2Config } from "@rlhf/model";
import type { RankedGroup } from "../ranking";

/** Most responses per group (the proto's K limit). */
export const MAX_K = 16;

/** Validated comparisons and their size. */
export interface Comparisons {
  groups: RankedGroup[];
  /** Responses in all (rows of a forward). */
  sequences: number;
  /** Tokens in all, the prompt counted once per response. */
  tokens: number;
}

function checkIds(ids: readonly number[], field: string, vocabSize: number): void {
  ids.forEach((id, j) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new InvalidArgumentError(`${field}[${j}]`, `id ${id} is outside the vocabulary [0, ${vocabSize})`);
  });
}

function checkFits(promptLen: number, responseLen: number, field: string, nPositions: number): void {
  if (promptLen + responseLen > nPositions) {
    throw new InvalidArgumentError(field, `prompt + response is ${promptLen + responseLen} tokens, more than the context length of ${nPositions}`);
  }
}

/**
 * Validates a ComparisonBatch against the model (ids, lengths, K, ranks); errors name the field
 * under `field` (e.g. "comparisons.groups[2].ranks"). Pairs become groups of K = 2, ranks [0, 1].
 */
export function comparisonsFromProto(batch: rewardModel.ComparisonBatch | undefined, field: string, config: Readonly<GPT2Config>): Comparisons {
  if (!batch) throw new InvalidArgumentError(field, "is required");
  const out: Comparisons = { groups: [], sequences: 0, tokens: 0 };
  const { vocabSize, nPositions } = config;
  batch.groups.forEach((g, i) => {
    const f = `${field}.groups[${i}]`;
    if (g.prompt.length < 1) throw new InvalidArgumentError(`${f}.prompt`, "needs at least 1 token");
    checkIds(g.prompt, `${f}.prompt`, vocabSize);
    const r = g.responses;
    if (!r) throw new InvalidArgumentError(`${f}.responses`, "is required");
    const K = r.lengths.length;
    if (K < 2 || K > MAX_K) throw new InvalidArgumentError(`${f}.responses.lengths`, `a group needs 2..${MAX_K} responses, got ${K}`);
    if (r.promptLengths.length > 0) throw new InvalidArgumentError(`${f}.responses.prompt_lengths`, "must be empty: responses hold response tokens only");
    if (g.ranks.length !== K) throw new InvalidArgumentError(`${f}.ranks`, `has ${g.ranks.length} entries but there are ${K} responses`);
    g.ranks.forEach((rank, k) => {
      if (rank > K) throw new InvalidArgumentError(`${f}.ranks[${k}]`, `is ${rank}, more than K = ${K}: a rank is 0..K (0-based or 1-based, lower is better)`);
    });
    const total = r.lengths.reduce((a, b) => a + b, 0);
    if (total !== r.tokens.length) throw new InvalidArgumentError(`${f}.responses.lengths`, `add up to ${total} but ${f}.responses.tokens holds ${r.tokens.length} ids`);
    checkIds(r.tokens, `${f}.responses.tokens`, vocabSize);
    r.lengths.forEach((L, k) => {
      if (L < 1) throw new InvalidArgumentError(`${f}.responses.lengths[${k}]`, "empty response: every response needs at least 1 token");
      checkFits(g.prompt.length, L, `${f}.responses.lengths[${k}]`, nPositions);
      out.tokens += g.prompt.length + L;
    });
    const responses = splitRows(r.tokens, r.lengths);
    out.sequences += K;
    out.groups.push({ prompt: [...g.prompt], responses, ranks: [...g.ranks] });
  });
  batch.pairs.forEach((p, i) => {
    const f = `${field}.pairs[${i}]`;
    if (p.prompt.length < 1) throw new InvalidArgumentError(`${f}.prompt`, "needs at least 1 token");
    checkIds(p.prompt, `${f}.prompt`, vocabSize);
    for (const [name, ids] of [["chosen", p.chosen], ["rejected", p.rejected]] as const) {
      if (ids.length < 1) throw new InvalidArgumentError(`${f}.${name}`, "needs at least 1 token");
      checkIds(ids, `${f}.${name}`, vocabSize);
      checkFits(p.prompt.length, ids.length, `${f}.${name}`, nPositions);
      out.tokens += p.prompt.length + ids.length;
    }
    out.sequences += 2;
    out.groups.push({ prompt: [...p.prompt], responses: [[...p.chosen], [...p.rejected]], ranks: [0, 1] });
  });
  return out;
}
