// Human rankings end to end across real processes: `rlhf label serve` (the labeling service,
// authenticated like every service here), `rlhf label import` of the example comparisons, a
// scripted person ranking them through the web API, `rlhf label export`, `rlhf data check`, and
// `rlhf run` training the reward model on the export.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { WebSession } from "@rlhf/labeling-client";
import { RLHF, ROOT, start, exitWithin, freePort } from "./helpers";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

const EXAMPLES = join(ROOT, "examples", "user-data");

test("rlhf label: import, a person ranks in the web API, export passes data check and trains a reward model through rlhf run", { timeout: testDeadlineMs(600_000) }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), "e2e-labeling-"));
  const [http, grpc] = [await freePort(), await freePort()];
  const serve = start([RLHF, "label", "serve", "--port", String(http), "--grpc-port", String(grpc), "--data-dir", join(tmp, "labeling"), "--no-seed"], { METRICS_PORT: "0" });
  try {
    const deadline = Date.now() + testDeadlineMs(120_000);
    while (!/labeling: web UI/.test(serve.out()) && Date.now() < deadline && serve.child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
    assert.match(serve.out(), /labeling: web UI http:\/\/127\.0\.0\.1:\d+\/ .* gRPC 127\.0\.0\.1:\d+ · sqlite/);
    const url = `http://127.0.0.1:${http}/`;
    const addr = `127.0.0.1:${grpc}`;

    // The example's comparisons go in (their rankings are ignored), with none for two labelers.
    const file = join(EXAMPLES, "rankings.jsonl");
    const imp = start([RLHF, "label", "import", file, "--addr", addr, "--overlap", "0"]);
    assert.equal(await exitWithin(imp, testDeadlineMs(60_000)), 0, imp.out());
    assert.match(imp.out(), /submitted batch rankings-[0-9a-f]{12}: 30 comparisons/);

    // A person ranks each as the example file does (through the same API as the web page).
    const original = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { prompt: string; responses: string[]; ranking: number[] });
    const byPrompt = new Map(original.map((r) => [r.prompt, r.ranking]));
    const admin = await WebSession.signIn(url, readFileSync(join(tmp, "labeling", "admin-token"), "utf8").trim());
    const person = await WebSession.signIn(url, (await admin.createLabeler("pat")).token);
    let ranked = 0;
    for (let a = await person.next(); a; a = await person.next()) {
      await person.submit(a.id, byPrompt.get(a.prompt) as number[], { scores: a.responses.map(() => 5) });
      ranked++;
    }
    assert.equal(ranked, 30);

    // The export is the example file again, record for record: the same training data.
    const out = join(tmp, "rankings.jsonl");
    const exp = start([RLHF, "label", "export", "--out", out, "--addr", addr]);
    assert.equal(await exitWithin(exp, testDeadlineMs(60_000)), 0, exp.out());
    assert.deepEqual(readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l)), original);
    const check = start([RLHF, "data", "check", out]);
    assert.equal(await exitWithin(check, testDeadlineMs(60_000)), 0, check.out());
    assert.match(check.out(), /ok: rankings \(inferred\), 30 records in 30 lines/);

    // The reward model trains on it through rlhf run (the example's config, rankings from the export).
    const yaml = readFileSync(join(EXAMPLES, "run.yaml"), "utf8").replace(/^( {4}\w+: )(\S+\.(jsonl|txt))/gm, (_, key: string, f: string) => `${key}${f === "rankings.jsonl" ? out : join(EXAMPLES, f)}`);
    writeFileSync(join(tmp, "run.yaml"), yaml);
    const run = start([RLHF, "run", join(tmp, "run.yaml"), "--runs-dir", join(tmp, "runs"), "--run-id", "labeled"]);
    assert.equal(await exitWithin(run, testDeadlineMs(500_000)), 0, run.out());
    const report = JSON.parse(readFileSync(join(tmp, "runs", "labeled", "report.json"), "utf8"));
    // 6 of the 30 rankings held out (validation_fraction 0.2), K = 3: 3 pairs each.
    assert.equal(report.reward_model.pairs.heldout, 18);
    assert.ok(report.reward_model.heldout_accuracy >= 0 && report.reward_model.heldout_accuracy <= 1);
  } finally {
    serve.child.kill("SIGTERM");
    await exitWithin(serve, testDeadlineMs(30_000));
  }
});

test("rlhf label serve on an empty folder: a sample batch, the demo's invite link and an admin link; SIGTERM stops it cleanly", { timeout: testDeadlineMs(180_000) }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), "e2e-labeling-serve-"));
  const http = await freePort();
  const serve = start([RLHF, "label", "serve", "--port", String(http), "--grpc-port", String(await freePort()), "--data-dir", join(tmp, "labeling")], { METRICS_PORT: "0" }, tmp);
  try {
    const deadline = Date.now() + testDeadlineMs(120_000);
    while (!/simulated labelers: /.test(serve.out()) && Date.now() < deadline && serve.child.exitCode === null) await new Promise((r) => setTimeout(r, 100));
    const invite = /sample batch seeded; labeler "demo": (http:\S+)#invite=(lbl_[A-Za-z0-9_-]+)/.exec(serve.out());
    assert.ok(invite, serve.out());
    assert.match(serve.out(), new RegExp(`admin link: +http://127\\.0\\.0\\.1:${http}/admin#token=[A-Za-z0-9_-]{43}`));
    const demo = await WebSession.signIn(invite[1], invite[2]);
    const a = await demo.next();
    assert.equal(a?.batchId, "sample");
    assert.equal(a?.responses.length, 4);
  } finally {
    serve.child.kill("SIGTERM");
    assert.equal(await exitWithin(serve, testDeadlineMs(30_000)), 0, serve.out());
  }
});
