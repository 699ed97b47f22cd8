/**
 * The simulated labelers of @rlhf/data ranking through the labeling service's web API, as people
 * do: what `rlhf label simulate` runs, and what an end-to-end test of the recipe with
 * `rankings.source: "labeling"` runs beside it.
 */
import { randomBytes } from "node:crypto";
import { ALL_TASK_FAMILIES, type InstructionTask, type TaskFamily, buildInstructionDatasets, createLabelers, loadBrownCorpus, makeTask, type BrownSentence, SimulatedLabeler } from "@rlhf/data";
import { EMPTY_RESPONSE_TEXT, WebSession, parsePanelSource, splitComparisonKey, type SimulatedPanel } from "@rlhf/labeling-client";

/** Built-in tasks by key (`<family>:<sentence id>`, the task id), checked against the prompt. */
export class BuiltinTasks {
  private sentences?: Map<string, BrownSentence>;

  taskFor(key: string, prompt: string): InstructionTask | undefined {
    key = splitComparisonKey(key).taskId;
    const colon = key.indexOf(":");
    if (colon < 0) return undefined;
    const family = key.slice(0, colon) as TaskFamily;
    if (!ALL_TASK_FAMILIES.includes(family)) return undefined;
    this.sentences ??= new Map(loadBrownCorpus().documents.flatMap((d) => d.sentences.map((s) => [s.id, s] as const)));
    const s = this.sentences.get(key.slice(colon + 1));
    const task = s && makeTask(family, s);
    return task && task.prompt === prompt ? task : undefined;
  }
}

/** Options of {@link simulateLabeling}. */
export interface SimulateOptions {
  /** The web UI's base URL. */
  url: string;
  adminToken: string;
  /** Panel size. Default 4. */
  count?: number;
  /** Panel seed (the labelers' noise). Default 0. */
  seed?: number;
  /** Target agreement of two labelers. Default 0.73 (the paper's). */
  agreement?: number;
  /** Most rankings in all. */
  max?: number;
  log?: (line: string) => void;
}

/** Ranks everything waiting with a panel of simulated labelers; returns how many were ranked and skipped. */
export async function simulateLabeling(o: SimulateOptions): Promise<{ ranked: number; skipped: number }> {
  const seed = o.seed ?? 0;
  // The panel the recipe's rankings stage uses: calibrated on the built-in tasks.
  const { rm } = buildInstructionDatasets({ seed, sizes: { sft: 0, rm: 200, ppo: 0, eval: 0 } });
  const panel = createLabelers(rm, { count: o.count ?? 4, seed, agreement: o.agreement });
  const admin = await WebSession.signIn(o.url, o.adminToken);
  if (!admin.admin) throw new Error("that token is not the admin token");
  const suffix = randomBytes(3).toString("hex");
  const sessions = await Promise.all(panel.map(async (l) => WebSession.signIn(o.url, (await admin.createLabeler(`sim-${seed}-${l.id}-${suffix}`, true)).token)));
  const tasks = new BuiltinTasks();
  // A batch the recipe submitted names its run's panel (size, seed, calibrated σ) and each key
  // its place in the batch: comparison n is ranked by that panel's labeler n mod size, as the
  // recipe's in-process labelers do, by the session of that number (mod this panel's size);
  // the others skip it.
  const panels = new Map<string, { panel: SimulatedPanel; labelers: SimulatedLabeler[] } | null>();
  const batchPanel = async (batchId: string) => {
    if (!panels.has(batchId)) {
      const stats = await admin.stats<{ batches: { batchId: string; source: string }[] }>();
      for (const b of stats.batches) {
        if (panels.has(b.batchId)) continue;
        const p = parsePanelSource(b.source);
        panels.set(b.batchId, p ? { panel: p, labelers: Array.from({ length: p.labelers }, (_, id) => new SimulatedLabeler({ id, seed: p.seed, noiseStd: p.noiseStd })) } : null);
      }
      if (!panels.has(batchId)) panels.set(batchId, null);
    }
    return panels.get(batchId) ?? undefined;
  };
  let ranked = 0;
  let skipped = 0;
  const active = new Set(sessions.keys());
  // Round robin, one comparison per labeler per turn, so that overlapping comparisons reach two of them.
  while (active.size && (o.max === undefined || ranked < o.max)) {
    for (const i of [...active]) {
      if (o.max !== undefined && ranked >= o.max) break;
      const a = await sessions[i].next();
      if (!a) {
        active.delete(i);
        continue;
      }
      const task = tasks.taskFor(a.key, a.prompt);
      const texts = [...a.responses].sort((x, y) => x.index - y.index).map((r) => (r.text === EMPTY_RESPONSE_TEXT ? "" : r.text));
      let judge: SimulatedLabeler = panel[i];
      const run = await batchPanel(a.batchId);
      const n = splitComparisonKey(a.key).index;
      if (run && n !== undefined) {
        if (n % run.panel.labelers % sessions.length !== i) {
          await sessions[i].skip(a.id);
          continue;
        }
        judge = run.labelers[n % run.panel.labelers];
      }
      const ranking = task && judge.rank(task, texts);
      if (!ranking || ranking.every((r) => r === 0)) {
        await sessions[i].skip(a.id);
        skipped++;
        continue;
      }
      await sessions[i].submit(a.id, ranking);
      ranked++;
      if (ranked % 50 === 0) o.log?.(`  ${ranked} ranked`);
    }
  }
  return { ranked, skipped };
}
