/**
 * Run events on NATS JetStream. The run folder's events.jsonl stays the source of truth; NATS is
 * a copy for live followers and late subscribers, so nothing depends on it being there.
 */
export * from "./subjects";
export * from "./config";
export * from "./stream";
export * from "./publisher";
export * from "./feed";
export * from "./nats-server";

import { natsServersFromEnv } from "./config";
import { EventPublisher, type PublisherOptions } from "./publisher";

/**
 * The publisher NATS_URL asks for (parsed now: a malformed value throws ConfigError), or
 * undefined when NATS_URL is unset.
 */
export function eventPublisherFromEnv(env: Record<string, string | undefined>, opts: Omit<PublisherOptions, "servers">): EventPublisher | undefined {
  const servers = natsServersFromEnv(env);
  return servers ? new EventPublisher({ ...opts, servers }) : undefined;
}
export { EVENTS_METER } from "./metrics";
