// The publisher and the feed against a real nats-server (JetStream, file storage) started here.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";
import { jetstreamManager, StorageType } from "@nats-io/jetstream";
import { metrics } from "@opentelemetry/api";
import { MeterProvider, MetricReader } from "@opentelemetry/sdk-metrics";
import { ConfigError, freePort } from "@rlhf/errors";
import { EventPublisher, UnknownRunError, natsServersFromEnv, openRunFeed, parseNatsServers, runSubject, runEventMsgId, startNatsServer, type DropReason, type NatsServer, type PublisherOptions } from "./index";
import { testDeadlineMs, waitUntil } from "@rlhf/errors/dist/testing/deadline";

const servers: NatsServer[] = [];
const publishers: EventPublisher[] = [];
after(async () => {
  for (const p of publishers) await p.close(100);
  for (const s of servers) await s.stop("SIGKILL");
});

async function server(port?: number, storeDir?: string): Promise<NatsServer> {
  const s = await startNatsServer({ port, storeDir });
  servers.push(s);
  return s;
}

function publisher(url: string, over: Partial<PublisherOptions> = {}): EventPublisher {
  const p = new EventPublisher({ servers: [url], reconnectWaitMs: 100, ackTimeoutMs: 1000, ...over });
  publishers.push(p);
  return p;
}

/** Every message of a run in stream order (a late subscriber). */
async function replay(url: string, runId: string): Promise<{ seq: number; json: { n: number } }[]> {
  const feed = await openRunFeed({ servers: [url], runId });
  const out: { seq: number; json: { n: number } }[] = [];
  for await (const m of feed) {
    out.push({ seq: m.streamSeq, json: m.json as { n: number } });
    if (m.pending === 0) break;
  }
  await feed.close();
  return out;
}

const range = (a: number, b: number) => Array.from({ length: b - a + 1 }, (_, i) => a + i);

test("NATS_URL: unset means no NATS; a malformed value is one clear line naming the variable", () => {
  assert.equal(natsServersFromEnv({}), undefined);
  assert.equal(natsServersFromEnv({ NATS_URL: " " }), undefined);
  assert.deepEqual(natsServersFromEnv({ NATS_URL: "nats://127.0.0.1:4222" }), ["nats://127.0.0.1:4222"]);
  assert.deepEqual(parseNatsServers("nats://a:1, tls://b.example:4443,c,[::1]:4222,nats://u:p@d:5"), ["nats://a:1", "tls://b.example:4443", "c", "[::1]:4222", "nats://u:p@d:5"]);
  for (const bad of ["http://x:4222", "nats://x:99999", "nats://x:port", "a b", ","]) {
    assert.throws(
      () => natsServersFromEnv({ NATS_URL: bad }),
      (e: unknown) => e instanceof ConfigError && /^NATS_URL must be nats:\/\/host:port \(comma-separated for several servers\), got "/.test(e.message),
      bad,
    );
  }
});

test("events reach the stream it creates, in order, with the documented settings; a late subscriber replays them", async () => {
  const s = await server();
  const p = publisher(s.url);
  for (let n = 1; n <= 50; n++) assert.equal(p.publish(runSubject("run-a", n % 2 ? "metrics" : "stage"), { n }, runEventMsgId("run-a", n)), true);
  p.publish(runSubject("run-b", "state"), { n: 0 }, runEventMsgId("run-b", 1));
  assert.equal(await p.flush(testDeadlineMs(10_000)), true);
  assert.deepEqual({ ...p.stats(), lastError: undefined }, { published: 51, duplicates: 0, dropped: 0, buffered: 0, bufferedBytes: 0, retries: 0, reconnects: 0, connected: true, lastError: undefined });
  const got = await replay(s.url, "run-a");
  assert.deepEqual(
    got.map((m) => m.json.n),
    range(1, 50),
  );
  const nc = await connect({ servers: s.url });
  const info = await (await jetstreamManager(nc)).streams.info("RLHF_RUNS");
  await nc.close();
  assert.deepEqual(info.config.subjects, ["rlhf.runs.>", "rlhf.policy.>"]);
  assert.equal(info.config.storage, StorageType.File);
  assert.equal(info.config.duplicate_window, 120_000 * 1e6);
  assert.equal(info.config.max_msg_size, 1024 * 1024);
  assert.equal(info.state.messages, 51);
  await assert.rejects(openRunFeed({ servers: [s.url], runId: "nope" }), (e: unknown) => e instanceof UnknownRunError && /no events of run "nope" in NATS stream RLHF_RUNS/.test(e.message));
});

test("a re-publish with the same message id is stored once", async () => {
  const s = await server();
  const p = publisher(s.url);
  p.publish(runSubject("dup", "metrics"), { n: 1 }, runEventMsgId("dup", 1));
  p.publish(runSubject("dup", "metrics"), { n: 1 }, runEventMsgId("dup", 1));
  p.publish(runSubject("dup", "metrics"), { n: 2 }, runEventMsgId("dup", 2));
  assert.equal(await p.flush(testDeadlineMs(10_000)), true);
  assert.equal(p.stats().published, 2);
  assert.equal(p.stats().duplicates, 1);
  assert.deepEqual(
    (await replay(s.url, "dup")).map((m) => m.json.n),
    [1, 2],
  );
});

test("with NATS down, publish() never waits; the buffer keeps the newest events within its bounds and counts the drops", async () => {
  const port = await freePort();
  const drops: Record<string, number> = {};
  const p = publisher(`nats://127.0.0.1:${port}`, { maxBufferedEvents: 100, onDropped: (n: number, r: DropReason) => (drops[r] = (drops[r] ?? 0) + n) });
  let slowest = 0;
  for (let n = 1; n <= 250; n++) {
    const t = process.hrtime.bigint();
    p.publish(runSubject("down", "metrics"), { n, pad: "x".repeat(50) }, runEventMsgId("down", n));
    slowest = Math.max(slowest, Number(process.hrtime.bigint() - t) / 1e6);
  }
  console.log(`slowest publish() with NATS down: ${slowest.toFixed(3)} ms`);
  assert.equal(p.stats().buffered, 100);
  assert.equal(p.stats().dropped, 150);
  assert.deepEqual(drops, { buffer_full: 150 });
  assert.equal(p.stats().connected, false);
  // An event larger than the byte bound is dropped at once.
  const small = publisher(`nats://127.0.0.1:${port}`, { maxBufferedBytes: 1000 });
  assert.equal(small.publish("rlhf.runs.x.log", { pad: "x".repeat(2000) }), false);
  for (let n = 0; n < 30; n++) small.publish("rlhf.runs.x.log", { n, pad: "x".repeat(60) });
  assert.ok(small.stats().bufferedBytes <= 1000 && small.stats().buffered < 30, JSON.stringify(small.stats()));
  assert.equal(small.stats().dropped, 1 + 30 - small.stats().buffered);

  // The server comes up: the buffered (newest) 100 arrive in order.
  const s = await server(port);
  assert.equal(await p.flush(testDeadlineMs(15_000)), true, JSON.stringify(p.stats()));
  assert.equal(p.stats().published, 100);
  assert.deepEqual(
    (await replay(s.url, "down")).map((m) => m.json.n),
    range(151, 250),
  );
});

test("killed and restarted server (same store) in the middle of sending: every event arrives once, in order; a fresh server gets the stream again", async () => {
  const s = await server();
  const p = publisher(s.url);
  for (let n = 1; n <= 400; n++) p.publish(runSubject("bounce", "metrics"), { n }, runEventMsgId("bounce", n));
  while (p.stats().published < 50) await new Promise((r) => setTimeout(r, 1));
  await s.stop("SIGKILL"); // with events on the wire: some were stored but not acked
  const before = p.stats();
  console.log(`killed with ${before.published} acked, ${before.buffered} buffered`);
  assert.ok(before.buffered > 0, "the kill came before the buffer was sent");
  for (let n = 401; n <= 420; n++) p.publish(runSubject("bounce", "metrics"), { n }, runEventMsgId("bounce", n));
  await waitUntil(() => !p.stats().connected, "the publisher sees the server gone");
  await s.restart();
  assert.equal(await p.flush(testDeadlineMs(15_000)), true, JSON.stringify(p.stats()));
  const st = p.stats();
  console.log(`after restart: ${JSON.stringify(st)}`);
  assert.ok(st.reconnects >= 1);
  assert.equal(st.dropped, 0);
  assert.equal(st.published + st.duplicates >= 420, true);
  assert.deepEqual(
    (await replay(s.url, "bounce")).map((m) => m.json.n),
    range(1, 420),
    "each event once, in order",
  );

  // A new server on the same port with an empty store: the publisher makes the stream again.
  await s.stop("SIGKILL");
  const fresh = await server(s.port, mkdtempSync(join(tmpdir(), "nats-fresh-")));
  for (let n = 421; n <= 425; n++) p.publish(runSubject("bounce", "metrics"), { n }, runEventMsgId("bounce", n));
  assert.equal(await p.flush(testDeadlineMs(15_000)), true, JSON.stringify(p.stats()));
  assert.deepEqual(
    (await replay(fresh.url, "bounce")).map((m) => m.json.n),
    range(421, 425),
  );
});

test("close() gives up on an unreachable server within its timeout, counting what was unsent", async () => {
  const p = new EventPublisher({ servers: [`nats://127.0.0.1:${await freePort()}`], reconnectWaitMs: 100 });
  for (let n = 0; n < 5; n++) p.publish("rlhf.runs.gone.metrics", { n });
  const t = Date.now();
  const stats = await p.close(300);
  console.log(`close() with NATS unreachable: ${Date.now() - t} ms`);
  assert.equal(stats.dropped, 5);
  assert.equal(stats.buffered, 0);
  assert.equal(p.publish("rlhf.runs.gone.metrics", {}), false, "nothing is taken after close");
  await assert.rejects(openRunFeed({ servers: [`nats://127.0.0.1:${await freePort()}`], runId: "x", connectTimeoutMs: 1000 }), /^Error: cannot connect to NATS at nats:\/\/127\.0\.0\.1:\d+: /);
});

test("close() without a timeout waits as long as one publish may take (ack timeout + 1 s) before dropping", async () => {
  const p = new EventPublisher({ servers: [`nats://127.0.0.1:${await freePort()}`], reconnectWaitMs: 100, ackTimeoutMs: 400 });
  p.publish("rlhf.runs.gone.metrics", { n: 1 });
  const t = Date.now();
  const stats = await p.close();
  // A lower bound only: a loaded machine can only make it longer.
  assert.ok(Date.now() - t >= 1300, `close() waited ${Date.now() - t} ms`);
  assert.equal(stats.dropped, 1);
});

test("a server without the stream: the feed says so", async () => {
  const s = await server();
  await assert.rejects(openRunFeed({ servers: [s.url], runId: "x" }), (e: unknown) => e instanceof UnknownRunError && /has no stream RLHF_RUNS/.test(e.message));
});

test("drops and the buffer show as the OpenTelemetry instruments rlhf.events.dropped / rlhf.events.buffered", async () => {
  class Reader extends MetricReader {
    protected onForceFlush(): Promise<void> {
      return Promise.resolve();
    }
    protected onShutdown(): Promise<void> {
      return Promise.resolve();
    }
  }
  const reader = new Reader();
  const provider = new MeterProvider({ readers: [reader] });
  metrics.setGlobalMeterProvider(provider);
  try {
    const p = publisher(`nats://127.0.0.1:${await freePort()}`, { maxBufferedEvents: 2 });
    for (let n = 0; n < 5; n++) p.publish("rlhf.runs.m.metrics", { n });
    const { resourceMetrics } = await reader.collect();
    const all = resourceMetrics.scopeMetrics.filter((s) => s.scope.name === "@rlhf/events").flatMap((s) => s.metrics);
    const points = (name: string) => all.find((m) => m.descriptor.name === name)?.dataPoints ?? [];
    assert.deepEqual(
      points("rlhf.events.dropped").map((d) => [d.attributes["rlhf.events.reason"], d.value]),
      [["buffer_full", 3]],
    );
    // The gauge sums every live publisher of the process (earlier tests' ones too).
    const buffered = publishers.reduce((a, x) => a + x.bufferedCount(), 0);
    assert.ok(buffered >= 2);
    assert.deepEqual(
      points("rlhf.events.buffered").map((d) => d.value),
      [buffered],
    );
  } finally {
    metrics.disable();
    await provider.shutdown();
  }
});
