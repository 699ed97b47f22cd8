// Run events on a real nats-server (JetStream, file storage) across the real service processes:
// `rlhf run` starts the five services with NATS_URL set and runs a small recipe. nats-server is
// killed (SIGKILL) once a PPO iteration is reported and started again (same store) two later:
// training neither stops nor waits, events.jsonl is complete, and what the services buffered
// meanwhile reaches the stream. A subscriber that joins after the run ended then replays every
// event in order, none missing or duplicated, and `rlhf watch` replays the finished run.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openRunFeed, startNatsServer, type NatsServer, type WeightsEvent } from "@rlhf/events";
import { BACKEND, RLHF, start, exitWithin } from "./helpers";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

// The cheapest recipe that has every stage: a random base model (no pretraining), a few SFT and
// reward-model steps, twelve PPO-ptx iterations of 4 prompts in one minibatch.
const ITERATIONS = 12;
const CONFIG = {
  model: { preset: "tiny", n_positions: 256 },
  data: { builtin: { sft_prompts: 16, rm_prompts: 8, ppo_prompts: 8, eval_prompts: 2 } },
  pretrain: { enabled: false },
  sft: { epochs: 1, batch_size: 8 },
  rankings: { prompts: 8, k: 2, max_new_tokens: 8 },
  reward_model: { epochs: 1, batch_size: 4 },
  ppo: { iterations: ITERATIONS, prompts_per_iteration: 4, minibatch_size: 4, max_new_tokens: 8, compare_without_ptx: false, ptx: { sequences: 2, sequence_length: 32 } },
  evaluation: { prompts: 2, max_new_tokens: 8, pretrain_validation_sequences: 2, samples_in_report: 1 },
  checkpoint: { every_iterations: 100, keep_last: 1 },
};

let nats: NatsServer | undefined;
after(() => nats?.stop("SIGKILL"));

interface EventLine {
  sequence: number;
  metrics?: { stage: string; step?: number; values: Record<string, number> };
  stateChanged?: { toState: string };
}

/** The complete lines of a (growing) events.jsonl. */
function readLines(path: string): string[] {
  if (!existsSync(path)) return [];
  const text = readFileSync(path, "utf8");
  return text.slice(0, text.lastIndexOf("\n") + 1).split("\n").filter((l) => l !== "");
}

const ppoMetrics = (lines: string[]) =>
  lines
    .map((l) => JSON.parse(l) as EventLine)
    .filter((e) => e.metrics?.stage === "STAGE_PPO")
    .map((e) => ({ step: e.metrics!.step ?? 0, iterationMs: e.metrics!.values["timing/iteration_ms"] }));

const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;

test("NATS down in the middle of a run neither stops nor slows it; a late subscriber and rlhf watch replay every event", { timeout: testDeadlineMs(300_000) }, async () => {
  nats = await startNatsServer();
  const runs = mkdtempSync(join(tmpdir(), "events-e2e-"));
  const configFile = join(runs, "config.json");
  writeFileSync(configFile, JSON.stringify(CONFIG));
  const runId = "nats-e2e";
  const eventsFile = join(runs, runId, "events.jsonl");
  const started = Date.now();
  const run = start([RLHF, "run", configFile, "--runs-dir", runs, "--run-id", runId], { NATS_URL: nats.url, RLHF_BACKEND: BACKEND });

  // NATS goes down once an iteration is reported (and a live watcher is consuming) and comes back
  // two iterations later; the run has ITERATIONS - 3 or more iterations left then, seconds even on
  // the native backend, for the services to send what they buffered before they stop.
  let live: ReturnType<typeof start> | undefined;
  let killedAt = 0;
  let restartedAt = 0;
  let killStep = 0;
  let restartStep = 0;
  let ended = false;
  void run.exited.then(() => (ended = true));
  while (!ended && restartedAt === 0) {
    const steps = ppoMetrics(readLines(eventsFile)).map((m) => m.step);
    if (killedAt === 0 && steps.length > 0) {
      // A live watcher, from the run's first event, through the outage to the end.
      const watcher = start([RLHF, "watch", runId, "--nats", nats.url, "--json"]);
      live = watcher;
      // Once it printed an event it is connected and consuming.
      for (let t = Date.now(); !watcher.out().includes('"sequence":1,') && Date.now() - t < testDeadlineMs(30_000); ) await new Promise((r) => setTimeout(r, 20));
      await nats.stop("SIGKILL");
      killedAt = Date.now();
      killStep = Math.max(...ppoMetrics(readLines(eventsFile)).map((m) => m.step));
      assert.ok(killStep <= ITERATIONS - 5, `killed by iteration ${killStep} of ${ITERATIONS}`);
    }
    if (killedAt !== 0 && steps.some((s) => s >= killStep + 2)) {
      restartStep = Math.max(...steps);
      assert.ok(restartStep <= ITERATIONS - 3, `restarted by iteration ${restartStep} of ${ITERATIONS}`);
      await nats.restart();
      restartedAt = Date.now();
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const code = await exitWithin(run, testDeadlineMs(240_000));
  console.log(`rlhf run: ${((Date.now() - started) / 1000).toFixed(0)} s; NATS was down for ${((restartedAt - killedAt) / 1000).toFixed(1)} s`);
  assert.equal(code, 0, run.out());
  assert.ok(killedAt > 0 && restartedAt > 0, "NATS was stopped and started again during the run");
  assert.match(run.out(), new RegExp(`run ${runId} SUCCEEDED`));

  // events.jsonl, the record: numbered without gaps, every iteration's metrics once.
  const lines = readLines(eventsFile);
  const records = lines.map((l) => JSON.parse(l) as EventLine);
  assert.deepEqual(
    records.map((e) => e.sequence),
    records.map((_, i) => i + 1),
  );
  const iterations = ppoMetrics(lines);
  assert.deepEqual(
    iterations.map((m) => m.step),
    Array.from({ length: ITERATIONS }, (_, i) => i + 1),
  );
  assert.equal(records.at(-1)?.stateChanged?.toState, "RUN_STATE_SUCCEEDED");

  // Training did not wait for NATS: the iteration times with it down vs up (printed, not asserted).
  const wasDown = (step: number) => step > killStep && step <= restartStep;
  const up = iterations.filter((m) => !wasDown(m.step)).map((m) => m.iterationMs);
  const down = iterations.filter((m) => wasDown(m.step)).map((m) => m.iterationMs);
  console.log(`PPO iteration time: NATS up mean ${mean(up).toFixed(0)} ms [${up.join(", ")}]; NATS down (iterations ${killStep + 1}-${restartStep}) mean ${mean(down).toFixed(0)} ms [${down.join(", ")}]; ratio down/up ${(mean(down) / mean(up)).toFixed(2)}`);

  // What the publishers reported (their JSON log lines).
  const logLines = (service: string) =>
    readFileSync(join(runs, `${service}.log`), "utf8")
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  for (const service of ["ppo-coordinator", "policy"]) {
    const log = logLines(service);
    const lost = log.find((l) => l.msg === "NATS connection lost; buffering events and reconnecting");
    const back = log.filter((l) => l.msg === "NATS reconnected");
    const stopped = log.find((l) => String(l.msg).startsWith("events publisher stopped"));
    console.log(`${service}: reconnected ${JSON.stringify(back.map(({ downMs, buffered, dropped }) => ({ downMs, buffered, dropped })))}; at shutdown ${JSON.stringify(stopped && { published: stopped.published, duplicates: stopped.duplicates, dropped: stopped.dropped, unsent: stopped.unsent, retries: stopped.retries, reconnects: stopped.reconnects })}`);
    assert.ok(lost && back.length >= 1 && stopped, `${service} logged the outage, the reconnect and its counters`);
    assert.equal(stopped.dropped, 0, `${service} dropped nothing`);
    assert.ok((stopped.reconnects as number) >= 1);
  }
  const coordBack = logLines("ppo-coordinator").find((l) => l.msg === "NATS reconnected");
  assert.ok((coordBack?.buffered as number) >= 2, "the coordinator had events of the iterations NATS missed buffered when it came back");

  // A subscriber that joins now replays the run from its first event: the same lines, in order.
  const feed = await openRunFeed({ servers: [nats.url], runId });
  const runEvents: string[] = [];
  const weights: WeightsEvent[] = [];
  for await (const m of feed) {
    if (m.kind === "weights") weights.push(m.json as WeightsEvent);
    else runEvents.push(m.text);
    if (m.pending === 0) break;
  }
  await feed.close();
  assert.equal(runEvents.length, lines.length, "none missing, none duplicated");
  assert.deepEqual(runEvents, lines, "byte for byte the events.jsonl lines, in order");
  // The policy's weights versions under the run: one per PPO update, increasing.
  const updates = weights.filter((w) => w.weights.reason === "ppo_update");
  assert.equal(updates.length, ITERATIONS, "one minibatch update per iteration");
  assert.ok(
    updates.every((w, i) => w.runId === runId && (i === 0 || w.weights.version > updates[i - 1].weights.version)),
    JSON.stringify(updates),
  );
  assert.ok(weights.some((w) => w.weights.reason === "sft") && weights.some((w) => w.weights.reason === "load_checkpoint"));

  // The live watcher saw everything too, and stopped at the end of the run.
  const liveAt = Date.now();
  assert.equal(await exitWithin(live!, testDeadlineMs(90_000)), 0, live!.out());
  console.log(`live rlhf watch ended ${((Date.now() - liveAt) / 1000).toFixed(1)} s after the run`);
  assert.deepEqual(
    live!.out().trim().split("\n").filter((l) => !l.includes('"weights":{')),
    lines,
  );

  // rlhf watch replays the finished run, from NATS and from the run folder alike.
  const watch = start([RLHF, "watch", runId, "--nats", nats.url]);
  assert.equal(await exitWithin(watch, testDeadlineMs(30_000)), 0, watch.out());
  assert.match(watch.out(), new RegExp(`PPO iteration ${ITERATIONS}/${ITERATIONS} {2}PPO-ptx {2}reward `));
  assert.match(watch.out(), new RegExp(`run ${runId} SUCCEEDED\\n`));
  const fromFolder = start([RLHF, "watch", runId, "--runs-dir", runs]);
  assert.equal(await exitWithin(fromFolder, testDeadlineMs(30_000)), 0, fromFolder.out());
  const body = (t: string) => t.slice(t.indexOf("\n") + 1, t.indexOf("SUCCEEDED\n"));
  assert.equal(body(watch.out()), body(fromFolder.out()));
  const json = start([RLHF, "watch", runId, "--nats", nats.url, "--json"]);
  assert.equal(await exitWithin(json, testDeadlineMs(30_000)), 0, json.out());
  assert.equal(json.out().trim().split("\n").length, lines.length + weights.length);
});
