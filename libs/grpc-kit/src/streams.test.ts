// All-or-nothing request streams: a client-streaming or bidirectional call whose client cancels
// (or whose deadline passes) before it half-closes must never look like a complete request to
// the handler, so a handler that applies its request after reading it all applies nothing.
// Real server on 127.0.0.1:0, real generated clients.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { referenceModel, rewardModel } from "@rlhf/proto";
import { createLogger, startServer, clientStream, bidiStream, createClient, SerialQueue } from "./index";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

const log = createLogger({ service: "streams-test", destination: new Writable({ write: (_c, _e, cb) => cb() }), level: "debug" });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What a handler saw: how many messages, and whether the stream ended as complete or threw. */
interface Seen {
  messages: number;
  outcome: "complete" | string;
}

function watch(outcomes: Seen[]) {
  return async (reqs: AsyncIterable<unknown>): Promise<number> => {
    const seen: Seen = { messages: 0, outcome: "pending" };
    outcomes.push(seen);
    try {
      for await (const _r of reqs) seen.messages++;
      seen.outcome = "complete";
    } catch (e) {
      seen.outcome = (e as { code?: string }).code ?? String(e);
      throw e;
    }
    return seen.messages;
  };
}

/** Waits for `cond`; the 60 s bound only catches a hang (never a slow machine). */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < testDeadlineMs(60_000) / 10 && !cond(); i++) await sleep(10);
  assert.ok(cond(), `timed out waiting for ${what}`);
}

test("a client stream cancelled before it half-closes ends the handler's loop with CANCELLED, never as complete", async () => {
  const outcomes: Seen[] = [];
  const w = watch(outcomes);
  const srv = await startServer({
    log,
    services: [
      {
        definition: referenceModel.ReferenceModelServiceService,
        implementation: { uploadWeights: clientStream(log, async (reqs) => ({ bytesReceived: await w(reqs), weights: undefined })) },
      },
    ],
  });
  const c = createClient(referenceModel.ReferenceModelServiceClient, srv.address, { deadlineMs: testDeadlineMs(5000) });
  try {
    // Cancelled by the client after three messages.
    const ac = new AbortController();
    const call = c.clientStream("uploadWeights", { signal: ac.signal });
    for (let i = 0; i < 3; i++) await call.write({ chunk: undefined });
    await until(() => outcomes[0]?.messages === 3, "three messages on the server");
    ac.abort();
    await until(() => outcomes[0].outcome !== "pending", "the handler to see the end");
    await assert.rejects(call.end(), (e: grpc.ServiceError) => e.code === grpc.status.CANCELLED);
    assert.deepEqual(outcomes[0], { messages: 3, outcome: "CANCELLED" });

    // Its deadline passed before the half-close.
    // (1.5 s to write one message is generous; the half-close comes only after the deadline.)
    const late = c.clientStream("uploadWeights", { deadlineMs: 1500 }); // deadline under test
    await late.write({ chunk: undefined });
    await until(() => outcomes[1] !== undefined && outcomes[1].outcome !== "pending", "the handler to see the deadline");
    await assert.rejects(
      new Promise((_, reject) => void late.end().then(() => reject(new Error("answered OK")), reject)),
      (e: grpc.ServiceError) => e.code === grpc.status.DEADLINE_EXCEEDED,
    );
    assert.deepEqual(outcomes[1], { messages: 1, outcome: "CANCELLED" });

    // A stream that half-closes is complete.
    const ok = c.clientStream("uploadWeights");
    for (let i = 0; i < 2; i++) await ok.write({ chunk: undefined });
    assert.equal((await ok.end()).bytesReceived, 2);
    assert.deepEqual(outcomes[2], { messages: 2, outcome: "complete" });
  } finally {
    c.close();
    await srv.shutdown(500);
  }
});

test("a bidirectional stream cancelled before it half-closes ends the handler's loop with CANCELLED", async () => {
  const outcomes: Seen[] = [];
  const w = watch(outcomes);
  const srv = await startServer({
    log,
    services: [{ definition: rewardModel.RewardModelServiceService, implementation: { train: bidiStream(log, async (reqs) => void (await w(reqs))) } }],
  });
  const c = createClient(rewardModel.RewardModelServiceClient, srv.address, { deadlineMs: testDeadlineMs(5000) });
  try {
    const ac = new AbortController();
    const call = c.bidi("train", { signal: ac.signal });
    const ended = new Promise<number>((resolve) => {
      call.on("error", (e: grpc.ServiceError) => resolve(e.code));
      call.on("status", (s: grpc.StatusObject) => resolve(s.code));
    });
    call.on("data", () => undefined);
    call.write({ part: undefined });
    call.write({ part: undefined });
    await until(() => outcomes[0]?.messages === 2, "two messages on the server");
    ac.abort();
    assert.equal(await ended, grpc.status.CANCELLED);
    await until(() => outcomes[0].outcome !== "pending", "the handler to see the end");
    assert.deepEqual(outcomes[0], { messages: 2, outcome: "CANCELLED" });
  } finally {
    c.close();
    await srv.shutdown(500);
  }
});

test("a queued task whose caller gave up before its turn does not run", async () => {
  const q = new SerialQueue("streams-test", 4);
  let release: (() => void) | undefined;
  const first = q.run(() => new Promise<void>((r) => (release = r)));
  const ac = new AbortController();
  let ran = false;
  const second = q.run(() => void (ran = true), ac.signal);
  ac.abort();
  await until(() => release !== undefined, "the first task to start");
  release?.();
  await first;
  await assert.rejects(second, (e: { code?: string }) => e.code === "CANCELLED");
  assert.equal(ran, false);
  // Not aborted: it runs.
  assert.equal(await q.run(() => 7, new AbortController().signal), 7);
});

test("a file task past the queue's file deadline frees its caller, holds the queue and says so until it ends", async () => {
  const q = new SerialQueue("files-test", 4, 50);
  const stuck: (string | undefined)[] = [];
  q.onStuck = (what) => stuck.push(what);
  let release: (() => void) | undefined;
  let secondRan = false;
  // The clock starts when the task does: waiting behind another task does not count.
  let releaseFirst: (() => void) | undefined;
  const before = q.run(() => new Promise<void>((r) => (releaseFirst = r)));
  const save = q.runFile("SaveCheckpoint to /proc/x", () => new Promise<string>((r) => (release = () => r("saved"))));
  const second = q.run(() => (secondRan = true));
  await new Promise((r) => setTimeout(r, 120));
  assert.deepEqual(stuck, [], "not started yet: no deadline");
  releaseFirst?.();
  await before;
  await assert.rejects(save, (e: { code?: string; message: string }) => e.code === "DEADLINE_EXCEEDED" && e.message.startsWith("SaveCheckpoint to /proc/x did not finish within 50 ms; the files-test queue waits for it"));
  assert.deepEqual(stuck, ["SaveCheckpoint to /proc/x"]);
  assert.equal(q.stuck, "SaveCheckpoint to /proc/x");
  assert.equal(secondRan, false, "the next task waits: the overdue one may still change the model");
  release?.();
  assert.equal(await second, true);
  assert.deepEqual(stuck, ["SaveCheckpoint to /proc/x", undefined]);
  assert.equal(q.stuck, undefined);
  // Within its deadline a file task just returns.
  assert.equal(await q.runFile("LoadCheckpoint from x", () => 3), 3);
});
