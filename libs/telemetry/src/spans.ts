/**
 * Spans of the platform's own code: a root span that starts a new trace (one per PPO iteration,
 * one per stage), phase spans under it, attributes on the active span (a service's server span),
 * and the run's identity carried to every service as W3C baggage so that each span of a run,
 * in every process, carries `rlhf.run_id` (that is how the run folder's traces are routed).
 *
 * Everything here works without a started SDK: spans are then non-recording and cost nothing.
 */
import {
  ROOT_CONTEXT,
  context,
  createContextKey,
  propagation,
  trace,
  SpanStatusCode,
  type Attributes,
  type AttributeValue,
  type Context,
  type Link,
  type Span,
} from "@opentelemetry/api";
import type { ReadableSpan, SpanProcessor, Span as SdkSpan } from "@opentelemetry/sdk-trace-base";

/** The API types callers need, so that they need not depend on @opentelemetry/api themselves. */
export type { Attributes, Link, Span } from "@opentelemetry/api";

/** Name of the tracer the platform's own spans come from. */
export const TRACER_NAME = "rlhf";

/** Span attribute (and baggage key) of the run id; every span of a run carries it. */
export const ATTR_RUN_ID = "rlhf.run_id";
/** Span attribute (and baggage key) of the PPO iteration, 1-based. */
export const ATTR_ITERATION = "rlhf.iteration";
/** Span attribute (and baggage key) of the PPO variant: `ppo_ptx` or `ppo`. */
export const ATTR_VARIANT = "rlhf.variant";
/** Span attribute (and baggage key) of the recipe stage (`sft`, `ppo`, ...). */
export const ATTR_STAGE = "rlhf.stage";

/**
 * Baggage entries copied onto every span started in their context, in every process: the
 * coordinator sets them on a root span; gRPC carries them (W3C `baggage` header); the services'
 * server spans and whatever they call get them too.
 */
export const PROPAGATED_ATTRIBUTES: readonly string[] = [ATTR_RUN_ID, ATTR_ITERATION, ATTR_VARIANT, ATTR_STAGE];

/** Name of the root span of one PPO iteration (one trace per iteration). */
export const ITERATION_SPAN = "ppo.iteration";

/** The tracer of the platform's own spans. */
export function tracer() {
  return trace.getTracer(TRACER_NAME);
}

/** Marks a span failed: the exception as a span event, status ERROR with its message. */
export function recordSpanError(span: Span, err: unknown): void {
  const e = err instanceof Error ? err : new Error(String(err));
  span.recordException(e);
  span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
}

let annotationRelay: ((attrs: Attributes) => void) | undefined;

/**
 * Sends {@link annotateActiveSpan}'s attributes to `relay` instead of a span of this thread: a
 * model service's compute worker (@rlhf/model-service) has no spans of its own, and relays them
 * to the call's server span in the main thread.
 */
export function relayAnnotations(relay: ((attrs: Attributes) => void) | undefined): void {
  annotationRelay = relay;
}

/** Sets attributes on the active span (a handler's server span); nothing when there is none. */
export function annotateActiveSpan(attrs: Attributes): void {
  if (annotationRelay) annotationRelay(attrs);
  else trace.getActiveSpan()?.setAttributes(attrs);
}

/** Runs `fn` outside any trace (what it starts, timers included, belongs to no run's trace). */
export function outsideTraces<T>(fn: () => T): T {
  return context.with(ROOT_CONTEXT, fn);
}

// The root span of the current trace, so that phases are children of the root however they nest.
const ROOT_SPAN = createContextKey("rlhf.root-span");

async function runIn<T>(span: Span, ctx: Context, fn: (span: Span) => Promise<T>): Promise<T> {
  try {
    return await context.with(ctx, () => fn(span));
  } catch (err) {
    recordSpanError(span, err);
    throw err;
  } finally {
    span.end();
  }
}

/** Options of {@link inRootSpan}. */
export interface RootSpanOptions {
  /** Attributes of the root span. */
  attributes?: Attributes;
  /**
   * Baggage set for everything the trace does (see {@link PROPAGATED_ATTRIBUTES}): these become
   * attributes of every span of the trace, in every service.
   */
  baggage?: Record<string, string | number>;
  /** Links, e.g. from an iteration to its stage's span (another trace). */
  links?: Link[];
}

/**
 * Runs `fn` as the root span `name` of a NEW trace (never a child of the active span, e.g. the
 * RPC that started the run), with the baggage set; an error is recorded on the span and rethrown.
 */
export function inRootSpan<T>(name: string, opts: RootSpanOptions, fn: (span: Span) => Promise<T>): Promise<T> {
  let ctx = context.active();
  if (opts.baggage) {
    let bag = propagation.getBaggage(ctx) ?? propagation.createBaggage();
    for (const [k, v] of Object.entries(opts.baggage)) bag = bag.setEntry(k, { value: String(v) });
    ctx = propagation.setBaggage(ctx, bag);
  }
  const span = tracer().startSpan(name, { root: true, attributes: { ...baggageAttributes(opts.baggage ?? {}), ...opts.attributes }, links: opts.links }, ctx);
  return runIn(span, trace.setSpan(ctx, span).setValue(ROOT_SPAN, span), fn);
}

/**
 * Runs `fn` as the phase span `name`: a child of the nearest {@link inRootSpan} (however phases
 * nest), else of the active span. Calls made inside run in the phase's context, so the gRPC
 * client spans (and the services' server spans under them) are its children.
 */
export function inPhase<T>(name: string, attributes: Attributes, fn: (span: Span) => Promise<T>): Promise<T> {
  const active = context.active();
  const root = active.getValue(ROOT_SPAN) as Span | undefined;
  const parent = root ? trace.setSpan(active, root) : active;
  const span = tracer().startSpan(name, { attributes }, parent);
  return runIn(span, trace.setSpan(parent, span), fn);
}

/** Baggage values as attributes: numbers stay numbers. */
function baggageAttributes(bag: Record<string, string | number>): Attributes {
  const out: Attributes = {};
  for (const [k, v] of Object.entries(bag)) out[k] = typeof v === "number" ? v : attributeFromBaggage(v);
  return out;
}

function attributeFromBaggage(v: string): AttributeValue {
  return /^\d{1,15}$/.test(v) ? Number(v) : v;
}

/**
 * Copies the {@link PROPAGATED_ATTRIBUTES} baggage entries of a span's parent context onto the
 * span when it starts (a span's own attribute wins). Installed in every process by startTelemetry.
 */
export class BaggageAttributesProcessor implements SpanProcessor {
  onStart(span: SdkSpan, parentContext: Context): void {
    const bag = propagation.getBaggage(parentContext);
    if (!bag) return;
    for (const key of PROPAGATED_ATTRIBUTES) {
      const entry = bag.getEntry(key);
      if (entry && span.attributes[key] === undefined) span.setAttribute(key, attributeFromBaggage(entry.value));
    }
  }
  onEnd(_span: ReadableSpan): void {}
  forceFlush(): Promise<void> {
    return Promise.resolve();
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}
