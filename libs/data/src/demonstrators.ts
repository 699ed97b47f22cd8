/**
 * Demonstrators of varying skill, as the paper's contractors varied: most demonstrations are the
 * gold answer, a configurable share carries one realistic flaw — an item missing or extra, the
 * wrong order, a made-up word, a blocklisted word, a wrong count, a wrong item, or rambling past
 * the answer without ever ending it (no EOS). The SFT model then reproduces a mixture of good and
 * flawed answers that labelers can rank and PPO can improve on; with only gold demonstrations its
 * samples differ by its own noise alone.
 *
 * Demonstrator d of D has flaw rate share·(0.5 + d/(D−1)) (share·1 for D = 1): the mean is the
 * configured share, the best demonstrator makes half as many flaws and the worst one and a half
 * times as many. Task i is demonstrated by demonstrator i mod D. Every draw is keyed by (seed,
 * task id), so a demonstration does not depend on the order tasks are built in.
 */
import { InvalidArgumentError } from "@rlhf/errors";
import { DISTRACTOR_WORDS } from "./responses";
import { Rng } from "./rng";
import { DEFAULT_BLOCKLIST, type GoldAnswer, type InstructionTask, renderAnswer } from "./tasks";
import { normalizeWord, wordsOf } from "./words";

/** The kinds of flaw a demonstration can carry. */
export type FlawKind = "missing_item" | "extra_item" | "wrong_order" | "wrong_item" | "wrong_count" | "made_up_word" | "blocklisted_word" | "rambling";

/** Every flaw kind, in a fixed order. */
export const FLAW_KINDS: readonly FlawKind[] = ["missing_item", "extra_item", "wrong_order", "wrong_item", "wrong_count", "made_up_word", "blocklisted_word", "rambling"];

/** Options of the demonstrators (defaults: {@link DEFAULT_DEMONSTRATORS}). */
export interface DemonstratorOptions {
  /** Mean share of flawed demonstrations, in [0, 1]. */
  flawShare: number;
  /** Number of demonstrators (their flaw rates spread around the share). */
  count: number;
  /** The flaws they make (each flawed demonstration: one of those that suit the task, uniformly). */
  flaws: readonly FlawKind[];
  /** Words of the blocklisted-word flaw (default {@link DEFAULT_BLOCKLIST}). */
  blocklist?: readonly string[];
  /** Words a rambling demonstration goes on for (it never ends: no EOS). Default 20. */
  ramblingWords?: number;
}

/** Default demonstrators: 4, a share of 0.3 flawed, every kind of flaw. */
export const DEFAULT_DEMONSTRATORS: Readonly<DemonstratorOptions> = { flawShare: 0.3, count: 4, flaws: FLAW_KINDS };

/** One demonstration of a task. */
export interface Demonstration {
  /** The completion (a space, then the answer). */
  readonly completion: string;
  /** Whether the demonstration ends (EOS after it); false when it rambles on. */
  readonly eos: boolean;
  /** Its flaw, or null for the gold answer. */
  readonly flaw: FlawKind | null;
  /** Which demonstrator wrote it. */
  readonly demonstrator: number;
}

function check(o: DemonstratorOptions): void {
  if (!(o.flawShare >= 0 && o.flawShare <= 1)) throw new InvalidArgumentError("flawShare", `must be in [0, 1], got ${o.flawShare}`);
  if (!Number.isInteger(o.count) || o.count < 1) throw new InvalidArgumentError("count", `must be an integer >= 1, got ${o.count}`);
  for (const f of o.flaws) if (!FLAW_KINDS.includes(f)) throw new InvalidArgumentError("flaws", `unknown flaw "${f}"; known: ${FLAW_KINDS.join(", ")}`);
  const r = o.ramblingWords ?? 20;
  if (!Number.isInteger(r) || r < 1) throw new InvalidArgumentError("ramblingWords", `must be an integer >= 1, got ${r}`);
}

/** The flaw rate of demonstrator `d` of `count` (mean over the panel: `share`; capped at 1). */
export function demonstratorFlawRate(share: number, d: number, count: number): number {
  return Math.min(1, count === 1 ? share : share * (0.5 + d / (count - 1)));
}

/** Items of a gold answer as the answer lists them (words of a sequence, items of a list). */
function itemsOf(gold: GoldAnswer): string[] | undefined {
  if (gold.kind === "list") return [...gold.items];
  if (gold.kind === "sequence") return [...gold.words];
  return undefined;
}

function render(gold: GoldAnswer, items: readonly string[]): string {
  if (gold.kind === "list") return items.join(", ");
  return items.join(" ");
}

/** Source words that are not in the gold answer (honest but wrong additions). */
function otherSourceWords(task: InstructionTask): string[] {
  const answer = new Set(wordsOf(renderAnswer(task.gold)));
  const out: string[] = [];
  for (const w of task.source.split(/\s+/)) {
    const n = normalizeWord(w);
    if (n && !answer.has(n) && !/^\d+$/.test(n)) out.push(w.replace(/^[^\p{L}\p{N}]+|[^\p{L}\p{N}]+$/gu, ""));
  }
  return out.filter((w) => w);
}

/** The flaws that can be applied to this task (a list of one item cannot lose one, ...). */
export function applicableFlaws(task: InstructionTask, kinds: readonly FlawKind[] = FLAW_KINDS): FlawKind[] {
  const items = itemsOf(task.gold);
  const others = otherSourceWords(task);
  return kinds.filter((k) => {
    switch (k) {
      case "missing_item":
        return items !== undefined && items.length >= 2;
      case "extra_item":
        return others.length > 0 && task.gold.kind !== "count";
      case "wrong_order":
        return items !== undefined && items.length >= 2 && new Set(items.map((x) => x.toLowerCase())).size >= 2;
      case "wrong_item":
        return task.gold.kind === "word" && others.length > 0;
      case "wrong_count":
        return task.gold.kind === "count";
      case "made_up_word":
      case "blocklisted_word":
      case "rambling":
        return true;
    }
  });
}

/** The task's gold answer with one flaw of kind `kind` (drawn with `rng`). */
export function flawedAnswer(task: InstructionTask, kind: FlawKind, rng: Rng, opts: { blocklist?: readonly string[]; ramblingWords?: number } = {}): string {
  const gold = task.gold;
  const answer = renderAnswer(gold);
  const items = itemsOf(gold);
  const source = new Set(wordsOf(task.source));
  const madeUp = DISTRACTOR_WORDS.filter((w) => !source.has(normalizeWord(w)));
  const others = otherSourceWords(task);
  switch (kind) {
    case "missing_item": {
      if (!items || items.length < 2) throw new InvalidArgumentError("kind", `${kind} does not apply to ${task.id}`);
      const drop = rng.int(items.length);
      return render(gold, items.filter((_, i) => i !== drop));
    }
    case "extra_item": {
      const extra = rng.pick(others);
      if (!items) return `${answer} ${extra}`;
      const at = rng.int(items.length + 1);
      return render(gold, [...items.slice(0, at), extra, ...items.slice(at)]);
    }
    case "wrong_order": {
      if (!items || items.length < 2) throw new InvalidArgumentError("kind", `${kind} does not apply to ${task.id}`);
      // A different order: swap two items that differ (for two items: the other order).
      for (let tries = 0; tries < 8; tries++) {
        const i = rng.int(items.length);
        const j = rng.int(items.length);
        if (items[i].toLowerCase() === items[j].toLowerCase()) continue;
        const out = [...items];
        [out[i], out[j]] = [out[j], out[i]];
        return render(gold, out);
      }
      return render(gold, [...items].reverse());
    }
    case "wrong_item":
      return rng.pick(others);
    case "wrong_count": {
      if (gold.kind !== "count") throw new InvalidArgumentError("kind", `${kind} does not apply to ${task.id}`);
      const d = 1 + rng.int(2);
      const n = gold.value + (rng.uniform() < 0.5 && gold.value - d >= 1 ? -d : d);
      return String(n);
    }
    case "made_up_word": {
      const word = rng.pick(madeUp);
      if (items && items.length >= 2 && rng.uniform() < 0.5) {
        const out = [...items];
        out[rng.int(out.length)] = word;
        return render(gold, out);
      }
      if (gold.kind === "word") return word;
      return gold.kind === "list" ? `${answer}, ${word}` : `${answer} ${word}`;
    }
    case "blocklisted_word": {
      const bad = rng.pick(opts.blocklist?.length ? opts.blocklist : DEFAULT_BLOCKLIST);
      return gold.kind === "list" ? `${answer}, ${bad}` : `${answer} ${bad}`;
    }
    case "rambling": {
      // The answer, then the input's words over and over: a demonstrator who never stops.
      const words = task.source.split(/\s+/).filter((w) => w);
      const more: string[] = [];
      for (let i = 0; more.length < (opts.ramblingWords ?? 20); i++) more.push(words[i % words.length]);
      return `${answer} ${more.join(" ")}`;
    }
  }
}

/**
 * The demonstrations of `tasks` (task i by demonstrator i mod count): the gold completion, or
 * with the demonstrator's flaw rate one flawed answer (a rambling one without EOS).
 */
export function demonstrate(tasks: readonly InstructionTask[], opts: DemonstratorOptions = DEFAULT_DEMONSTRATORS, seed = 0): Demonstration[] {
  check(opts);
  return tasks.map((task, i) => {
    const d = i % opts.count;
    const rng = new Rng(seed, "demonstration", task.id);
    const rate = demonstratorFlawRate(opts.flawShare, d, opts.count);
    const kinds = applicableFlaws(task, opts.flaws);
    if (rng.uniform() >= rate || kinds.length === 0) return { completion: task.completion, eos: true, flaw: null, demonstrator: d };
    const flaw = rng.pick(kinds);
    return { completion: " " + flawedAnswer(task, flaw, rng, opts), eos: flaw !== "rambling", flaw, demonstrator: d };
  });
}
