import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { createServer, type AddressInfo } from "node:net";
import { LabelingClient, WebSession, rankingsToJsonl } from "@rlhf/labeling-client";
import { checkDataFile } from "@rlhf/data";
import { startTestApp } from "./testing/app";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => "OK",
    (e: grpc.ServiceError) => `${grpc.status[e.code]}: ${e.details}`,
  );

const comparisons = (n: number, k = 3) =>
  Array.from({ length: n }, (_, i) => ({ key: `q${i}`, prompt: `Prompt ${i}`, responses: Array.from({ length: k }, (_, j) => `answer ${i}/${j}`) }));

test("gRPC over a real socket: limits name the field, SubmitBatch is idempotent, WatchBatch follows labelers, ListRankings pages", async () => {
  const t = await startTestApp("sqlite");
  const client = new LabelingClient(t.app.server.address, { token: null });
  try {
    const info = await client.getInfo();
    assert.deepEqual([info.storage, info.minResponses, info.maxResponses, info.maxTextChars, info.maxBatchComparisons], ["sqlite", 2, 16, 8000, 10_000]);
    assert.equal(info.webUrl, t.app.http.url);

    // Bad input: INVALID_ARGUMENT naming the field and the limit.
    assert.match(await codeOf(client.submitBatch("bad id!", comparisons(1))), /^INVALID_ARGUMENT: batch_id: must be 1\.\.64 characters/);
    assert.match(await codeOf(client.submitBatch("b", [])), /^INVALID_ARGUMENT: comparisons: must hold at least one/);
    assert.match(await codeOf(client.submitBatch("b", comparisons(1, 1))), /^INVALID_ARGUMENT: comparisons\[0\]\.responses: K = 1: must be 2\.\.16/);
    assert.match(await codeOf(client.submitBatch("b", comparisons(1, 17))), /^INVALID_ARGUMENT: comparisons\[0\]\.responses: K = 17: must be 2\.\.16/);
    const long = comparisons(2);
    long[1].responses[2] = "x".repeat(8001);
    assert.match(await codeOf(client.submitBatch("b", long)), /^INVALID_ARGUMENT: comparisons\[1\]\.responses\[2\]: has 8001 characters, more than the limit of 8000/);
    const dup = comparisons(1);
    dup[0].responses[1] = `  ${dup[0].responses[0]} `;
    assert.match(await codeOf(client.submitBatch("b", dup)), /^INVALID_ARGUMENT: comparisons\[0\]\.responses\[1\]: duplicate of responses\[0\]/);
    assert.match(await codeOf(client.submitBatch("b", comparisons(1), { overlapFraction: 1.5 })), /^INVALID_ARGUMENT: overlap_fraction: must be in \[0, 1\]/);
    assert.match(await codeOf(client.getBatch("nope")), /^NOT_FOUND: batch_id: no batch "nope"/);

    // Idempotent by id.
    const first = await client.submitBatch("run-1:rankings", comparisons(5), { overlapFraction: 0.4, source: "test run" });
    assert.equal(first.created, true);
    assert.deepEqual([first.progress.comparisons, first.progress.overlapping, first.progress.ranked], [5, 2, 0]);
    const again = await client.submitBatch("run-1:rankings", comparisons(5));
    assert.equal(again.created, false);
    const changed = comparisons(5);
    changed[4].prompt = "other";
    assert.match(await codeOf(client.submitBatch("run-1:rankings", changed)), /^ALREADY_EXISTS: batch_id: batch "run-1:rankings" exists with other comparisons/);

    // Two labelers rank through the web API while a WatchBatch follows.
    const admin = await WebSession.signIn(t.app.http.url, t.adminToken);
    const ann = await WebSession.signIn(t.app.http.url, (await admin.createLabeler("ann")).token);
    const bob = await WebSession.signIn(t.app.http.url, (await admin.createLabeler("bob")).token);
    const seen: number[] = [];
    const watching = client.waitForBatch("run-1:rankings", { onProgress: (p) => seen.push(p.rankings), deadlineMs: testDeadlineMs(60_000) });
    for (const who of [ann, bob]) {
      for (let a = await who.next(); a; a = await who.next()) {
        // Best = the response with the lowest index; the last two tied.
        await who.submit(a.id, [0, 1, 1]);
      }
    }
    const done = await watching;
    assert.equal(done.done, true);
    assert.deepEqual([done.ranked, done.complete, done.rankings], [5, 5, 7]);
    assert.equal(seen[0], 0);
    assert.equal(seen[seen.length - 1], 7);

    // Pages of 3: 7 rankings in submission order, the same as all at once.
    const pages: string[] = [];
    let token = "";
    do {
      const r = await client.kit.unary("listRankings", { batchId: "run-1:rankings", pageSize: 3, pageToken: token });
      pages.push(r.rankings.map((x) => `${x.labeler}:${x.comparisonKey}`).join(","));
      token = r.nextPageToken;
    } while (token);
    // Overlap 0.4 of 5: comparisons 2 and 4 (floor((i+1) f) > floor(i f)) go to a second labeler.
    assert.deepEqual(pages, ["ann:q0,ann:q1,ann:q2", "ann:q3,ann:q4,bob:q2", "bob:q4"]);
    assert.match(await codeOf(client.kit.unary("listRankings", { batchId: "", pageSize: 5000, pageToken: "" })), /^INVALID_ARGUMENT: page_size: must be at most 1000/);
    assert.match(await codeOf(client.kit.unary("listRankings", { batchId: "", pageSize: 1, pageToken: "garbage" })), /^INVALID_ARGUMENT: page_token/);

    // collectRankings (what the recipe calls): a resubmission, one ranking per comparison, in batch order.
    const collected = await client.collectRankings("run-1:rankings", comparisons(5));
    assert.deepEqual(collected.rankings.map((r) => r.key), ["q0", "q1", "q2", "q3", "q4"]);
    assert.equal(collected.all.length, 7);
    assert.deepEqual(collected.rankings[0].ranking, [0, 1, 1]);

    // The export is what `rlhf data check` accepts.
    const dir = mkdtempSync(join(tmpdir(), "labeling-export-"));
    try {
      const file = join(dir, "rankings.jsonl");
      writeFileSync(file, rankingsToJsonl(collected.all));
      const report = checkDataFile(file, { kind: "rankings" });
      assert.deepEqual(report.errors, []);
      assert.equal(report.records, 7);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    client.close();
    await t.stop();
  }
});

test("gRPC auth: SubmitBatch and ListRankings need the service role, progress calls the viewer role", async () => {
  const dir = mkdtempSync(join(tmpdir(), "labeling-tokens-"));
  const tokens = { service: "svc-token-0123456789abcdef", viewer: "viewer-token-0123456789abc" };
  writeFileSync(join(dir, "service"), tokens.service + "\n");
  writeFileSync(join(dir, "viewer"), tokens.viewer + "\n");
  const saved = { ...process.env };
  process.env.RLHF_SERVICE_TOKEN_FILE = join(dir, "service");
  process.env.RLHF_VIEWER_TOKEN_FILE = join(dir, "viewer");
  const t = await startTestApp("sqlite");
  process.env = saved;
  const as = (token: string | null) => new LabelingClient(t.app.server.address, { token: token === null ? null : () => token });
  const none = as(null);
  const viewer = as(tokens.viewer);
  const service = as(tokens.service);
  try {
    assert.match(await codeOf(none.getInfo()), /^UNAUTHENTICATED/);
    assert.match(await codeOf(viewer.submitBatch("b1", comparisons(1))), /^PERMISSION_DENIED/);
    assert.equal(await codeOf(service.submitBatch("b1", comparisons(1))), "OK");
    assert.equal(await codeOf(viewer.getBatch("b1")), "OK");
    assert.equal(await codeOf(viewer.listBatches()), "OK");
    assert.match(await codeOf(viewer.listRankings("b1")), /^PERMISSION_DENIED/);
    assert.equal(await codeOf(service.listRankings("b1")), "OK");
  } finally {
    for (const c of [none, viewer, service]) c.close();
    await t.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test("collectRankings carries on across a restart of the service (the recipe waiting on people)", async () => {
  const port = await freePort();
  const first = await startTestApp("sqlite", { GRPC_PORT: String(port) });
  const client = new LabelingClient(`127.0.0.1:${port}`, { token: null });
  let second: Awaited<ReturnType<typeof startTestApp>> | undefined;
  try {
    const progress: number[] = [];
    const collecting = client.collectRankings("restart", comparisons(3), { overlapFraction: 0, onProgress: (p) => progress.push(p.ranked) });
    // The batch is in; the service goes away while the client waits, and comes back on the same database and port.
    while (progress.length === 0) await new Promise((r) => setTimeout(r, 20));
    await first.app.stop(200);
    second = await startTestApp("sqlite", { GRPC_PORT: String(port), LABELING_DB: first.db.target.kind === "sqlite" ? first.db.target.file : "", LABELING_DATA_DIR: first.db.env.LABELING_DATA_DIR });
    const admin = await WebSession.signIn(second.app.http.url, second.adminToken);
    const ann = await WebSession.signIn(second.app.http.url, (await admin.createLabeler("ann")).token);
    for (let a = await ann.next(); a; a = await ann.next()) await ann.submit(a.id, [1, 0, 2]);
    const r = await collecting;
    assert.deepEqual(r.rankings.map((x) => [x.key, x.ranking.join("")]), [["q0", "102"], ["q1", "102"], ["q2", "102"]]);
    assert.equal(r.progress.ranked, 3);
  } finally {
    client.close();
    await second?.app.stop(200);
    await first.db.cleanup();
    await second?.db.cleanup();
  }
});

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const p = (srv.address() as AddressInfo).port;
      srv.close(() => resolve(p));
    });
  });
}
