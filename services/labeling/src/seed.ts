/**
 * A small sample batch for a fresh database (`rlhf label serve` on a fresh clone shows something
 * to rank): built-in instruction tasks with simulated responses of varying quality, the same
 * kind of comparisons the recipe's rankings stage sends.
 */
import { Rng, buildInstructionDatasets, simulateResponses } from "@rlhf/data";
import { checkBatch, DEFAULT_LIMITS, type BatchInput } from "./domain/comparisons";
import type { LabelingStore } from "./store/store";

/** Id of the sample batch. */
export const SAMPLE_BATCH_ID = "sample";

/** The sample batch: `n` built-in reward-model prompts with K = 4 distinct simulated responses each. */
export function sampleBatch(n = 12, k = 4, seed = 0): BatchInput {
  const { rm } = buildInstructionDatasets({ seed, sizes: { sft: 0, rm: n * 4, ppo: 0, eval: 0 } });
  const rng = new Rng(seed, "labeling-sample");
  const comparisons: BatchInput["comparisons"] = [];
  for (const task of rm) {
    if (comparisons.length >= n) break;
    // Draw until K distinct responses (the service ranks distinct ones only).
    const seen = new Set<string>();
    const responses: string[] = [];
    for (let tries = 0; responses.length < k && tries < 8; tries++) {
      for (const r of simulateResponses(task, k, rng)) {
        const key = r.trim().replace(/\s+/g, " ");
        if (key && !seen.has(key) && responses.length < k) {
          seen.add(key);
          responses.push(r);
        }
      }
    }
    if (responses.length === k) comparisons.push({ key: task.id, prompt: task.prompt, responses });
  }
  const b = { batchId: SAMPLE_BATCH_ID, comparisons, overlapFraction: 0.25, source: "sample batch (built-in tasks, simulated responses)" };
  checkBatch(b, DEFAULT_LIMITS);
  return b;
}

/** Submits the sample batch and a `demo` labeler when the database holds no batch; returns the demo token then. */
export async function seedSampleBatch(store: LabelingStore): Promise<{ demoToken: string } | undefined> {
  if (!(await store.isEmpty())) return undefined;
  await store.submitBatch(sampleBatch());
  const { token } = await store.createLabeler("demo");
  return { demoToken: token };
}
