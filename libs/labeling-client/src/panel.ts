/**
 * What travels with a batch the recipe submits so that `rlhf label simulate` ranks it exactly as
 * the recipe's in-process simulated labelers would: the panel (size, seed, calibrated noise σ) in
 * the batch's source text, and each comparison's place in the batch in its key
 * (`<task id>#<index>`: labeler index mod size ranks it). People ignore both.
 */

/** The simulated labeler panel of a run: `createLabelers` of @rlhf/data with these. */
export interface SimulatedPanel {
  /** Panel size (`data.builtin.labelers`). */
  labelers: number;
  /** Panel seed (`data.builtin.seed`). */
  seed: number;
  /** The calibrated σ of every labeler's noise. */
  noiseStd: number;
}

/**
 * What a blank sampled response (the model ended at once) is shown as: the service takes no
 * empty text. The simulated labelers judge it as the empty response it is.
 */
export const EMPTY_RESPONSE_TEXT = "(empty response)";

/** The panel as a phrase of a batch's source text (σ written so that it reads back exactly). */
export function panelSource(p: SimulatedPanel): string {
  return `simulated panel labelers=${p.labelers} seed=${p.seed} noise_std=${p.noiseStd}`;
}

/** The panel a batch's source text names, if any. */
export function parsePanelSource(source: string): SimulatedPanel | undefined {
  const m = /simulated panel labelers=(\d+) seed=(\d+) noise_std=([0-9.eE+-]+)/.exec(source);
  if (!m) return undefined;
  const p = { labelers: Number(m[1]), seed: Number(m[2]), noiseStd: Number(m[3]) };
  return p.labelers >= 1 && Number.isFinite(p.noiseStd) && p.noiseStd >= 0 ? p : undefined;
}

/** A comparison key `<task id>#<index>` split; a key without an index gives index undefined. */
export function splitComparisonKey(key: string): { taskId: string; index?: number } {
  const m = /^(.*)#(\d+)$/.exec(key);
  return m ? { taskId: m[1], index: Number(m[2]) } : { taskId: key };
}
