/**
 * The policy's weights events on NATS (when NATS_URL is set): one per Sft, PpoUpdate or
 * LoadCheckpoint call that changed the policy's weights version, on `rlhf.runs.<run id>.weights`
 * when the call named its run, else on `rlhf.policy.weights`. Publishing only buffers: a slow or
 * absent NATS never delays a call (see @rlhf/events).
 */
import { POLICY_WEIGHTS_SUBJECT, runSubject, type EventPublisher, type WeightsEvent } from "@rlhf/events";
import type { WeightsChange } from "./policy";

/** The payload of a weights event. */
export function weightsEvent(c: WeightsChange, now = new Date()): WeightsEvent {
  return {
    ...(c.runId ? { runId: c.runId } : {}),
    time: now.toISOString(),
    weights: {
      modelId: c.policy.modelId,
      version: c.policy.version,
      source: c.policy.source,
      reason: c.reason,
      ...(c.critic ? { criticVersion: c.critic.version } : {}),
    },
  };
}

/** Publishes a change (the publisher makes up the message id). */
export function publishWeights(events: Pick<EventPublisher, "publish">, c: WeightsChange): void {
  events.publish(c.runId ? runSubject(c.runId, "weights") : POLICY_WEIGHTS_SUBJECT, weightsEvent(c));
}
