// The run store's events on a real nats-server (JetStream): every event it emits goes to
// rlhf.runs.<run id>.<kind> with the bytes of its events.jsonl line. No model service is called.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ppoCoordinator } from "@rlhf/proto";
import { createLogger } from "@rlhf/grpc-kit";
import { resolveRunConfig } from "@rlhf/run-config";
import { EventPublisher, openRunFeed, startNatsServer, type NatsServer } from "@rlhf/events";
import { RunStore } from "./runs";
import type { Clients } from "./recipe/gateway";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

const log = createLogger({ service: "runs-events-test", level: "silent" });
const { RunState } = ppoCoordinator;
const noClients = new Proxy({}, { get: () => assert.fail("no model service may be called") }) as unknown as Clients;
let nats: NatsServer | undefined;
after(() => nats?.stop());

test("an event the store emits goes to NATS as the same JSON as its events.jsonl line", async () => {
  nats = await startNatsServer();
  const dir = mkdtempSync(join(tmpdir(), "runs-events-"));
  // A run that was RUNNING when its coordinator stopped: init() marks it FAILED (event 3).
  const runDir = join(dir, "mid-run");
  mkdirSync(runDir);
  const run = ppoCoordinator.Run.fromPartial({ id: "mid-run", state: RunState.RUN_STATE_RUNNING, runDir, createTime: new Date(0), configJson: JSON.stringify(resolveRunConfig({})) });
  writeFileSync(join(runDir, "run.json"), JSON.stringify(ppoCoordinator.Run.toJSON(run)));
  const old = [1, 2].map((i) => JSON.stringify(ppoCoordinator.RunEvent.toJSON({ runId: "mid-run", sequence: i, time: new Date(i), payload: { $case: "metrics", metrics: { stage: ppoCoordinator.Stage.STAGE_PPO, step: i, values: { "objective/kl": i } } } })));
  writeFileSync(join(runDir, "events.jsonl"), old.join("\n") + "\n");

  const events = new EventPublisher({ servers: [nats.url], log });
  const store = new RunStore(dir, noClients, log, events);
  await store.init();
  assert.equal(await events.flush(testDeadlineMs(10_000)), true);
  await events.close();

  const lines = readFileSync(join(runDir, "events.jsonl"), "utf8").trim().split("\n");
  assert.equal(lines.length, 3);
  const feed = await openRunFeed({ servers: [nats.url], runId: "mid-run" });
  const got: { subject: string; text: string }[] = [];
  for await (const m of feed) {
    got.push({ subject: m.subject, text: m.text });
    if (m.pending === 0) break;
  }
  await feed.close();
  // Events read from disk at start are not published again: only the new one.
  assert.deepEqual(got, [{ subject: "rlhf.runs.mid-run.state", text: lines[2] }]);
  assert.equal(JSON.parse(got[0].text).stateChanged.toState, "RUN_STATE_FAILED");
});
