/**
 * The recipe's spans, kept thin so that the recipe still reads as one: each PPO iteration is ONE
 * trace (root span `ppo.iteration`, never a child of the StartRun/ResumeRun call), each stage one
 * trace (`stage.<name>`), and `phase` wraps one step of either in a child span. The gRPC calls
 * made inside run in the phase's context, so the services' server spans are children of the call
 * that reached them. The run id (and iteration, variant, stage) travel as baggage and end up on
 * every span of the run in every service, which routes them to the run folder's traces.jsonl.
 */
import { basename } from "node:path";
import { ATTR_ITERATION, ATTR_RUN_ID, ATTR_STAGE, ATTR_VARIANT, ITERATION_SPAN, inPhase, inRootSpan, registerRunTraceDir, type Attributes, type Link, type Span } from "@rlhf/telemetry";

/** The run a span belongs to: its id (the folder's name when there is none) and its folder. */
interface RunRef {
  runId?: string;
  runDir: string;
}

function runIdOf(ctx: RunRef): string {
  return ctx.runId ?? basename(ctx.runDir);
}

/** Stage spans by run, so that an iteration can link to its stage's span. */
const stageSpans = new Map<string, Span>();

/** Runs one stage of the recipe as its own trace: root span `stage.<name>`. */
export function stageTrace<T>(ctx: RunRef, stage: string, fn: () => Promise<T>): Promise<T> {
  const runId = runIdOf(ctx);
  registerRunTraceDir(runId, ctx.runDir);
  return inRootSpan(`stage.${stage}`, { baggage: { [ATTR_RUN_ID]: runId, [ATTR_STAGE]: stage } }, async (span) => {
    stageSpans.set(runId, span);
    try {
      return await fn();
    } finally {
      if (stageSpans.get(runId) === span) stageSpans.delete(runId);
    }
  });
}

/**
 * Runs one PPO iteration (and its checkpoint) as its own trace: root span `ppo.iteration` with
 * the run id, iteration (1-based), variant and `attributes`; linked to the PPO stage's span.
 */
export function iterationTrace<T>(ctx: RunRef, iteration: number, variant: "ppo_ptx" | "ppo", attributes: Attributes, fn: (root: Span) => Promise<T>): Promise<T> {
  const runId = runIdOf(ctx);
  registerRunTraceDir(runId, ctx.runDir);
  const stage = stageSpans.get(runId);
  const links: Link[] = stage ? [{ context: stage.spanContext() }] : [];
  return inRootSpan(ITERATION_SPAN, { baggage: { [ATTR_RUN_ID]: runId, [ATTR_ITERATION]: iteration, [ATTR_VARIANT]: variant, [ATTR_STAGE]: "ppo" }, attributes, links }, fn);
}

/**
 * Runs `fn` as phase `name` of the current iteration or stage (a child span of its root, however
 * phases nest); with `timing`, adds the phase's wall time (ms) to `timing.into[timing.key]`.
 */
export async function phase<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T>, timing?: { into: Record<string, number>; key: string }): Promise<T> {
  const t = Date.now();
  try {
    return await inPhase(name, attributes, fn);
  } finally {
    if (timing) timing.into[timing.key] = (timing.into[timing.key] ?? 0) + Date.now() - t;
  }
}
