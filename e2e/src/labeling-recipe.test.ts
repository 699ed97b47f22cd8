// The recipe with rankings.source "labeling", across real processes: `rlhf label serve`, `rlhf run`
// whose rankings stage sends the SFT samples to it and waits, interrupted while waiting and
// resumed with `rlhf resume` (the batch is found again, not submitted twice), and `rlhf label
// simulate` ranking it through the web API. The reward model ends exactly where the same config
// with the in-process simulated labelers ends (same seed): the same groups, the same ranks.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LabelingClient } from "@rlhf/labeling-client";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";
import { MICRO, RLHF, TOKEN_FILE, start, exitWithin, freePort, type Proc } from "./helpers";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Report {
  reward_model: { heldout_accuracy: number; train_loss: number; pairs: { heldout: number; train: number }; labeler_agreement: number | null };
}

test("rankings.source labeling: rlhf label simulate ranks through the service, resumed while waiting, the reward model as with in-process labelers", { timeout: testDeadlineMs(1_200_000) }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), "e2e-labeling-recipe-"));
  const runsDir = join(tmp, "runs");
  const [http, grpc] = [await freePort(), await freePort()];
  // The labeling service has the e2e token (helpers' RLHF_AUTH_TOKEN_FILE); a `rlhf run` session
  // has its own, so its coordinator is given this one for the labeling service.
  const serve = start([RLHF, "label", "serve", "--port", String(http), "--grpc-port", String(grpc), "--data-dir", join(tmp, "labeling"), "--no-seed"], { METRICS_PORT: "0" });
  const addr = `127.0.0.1:${grpc}`;
  const url = `http://127.0.0.1:${http}/`;
  const client = new LabelingClient(addr, { deadlineMs: testDeadlineMs(30_000) });
  const base = { ...MICRO, seed: 5 };
  try {
    const deadline = Date.now() + testDeadlineMs(120_000);
    while (!/labeling: web UI/.test(serve.out()) && Date.now() < deadline && serve.child.exitCode === null) await sleep(100);
    assert.match(serve.out(), /labeling: web UI/);

    // 1. The in-process simulated labelers.
    writeFileSync(join(tmp, "simulated.json"), JSON.stringify(base));
    const a = start([RLHF, "run", join(tmp, "simulated.json"), "--runs-dir", runsDir, "--run-id", "simulated"]);
    assert.equal(await exitWithin(a, testDeadlineMs(500_000)), 0, a.out());
    const inProcess = JSON.parse(readFileSync(join(runsDir, "simulated", "report.json"), "utf8")) as Report;

    // 2. The same config through the labeling service: interrupted while it waits for labelers.
    const cfg = join(tmp, "labeling.json");
    writeFileSync(cfg, JSON.stringify({ ...base, rankings: { ...base.rankings, source: "labeling", labeling: { overlap: 0.25 } } }));
    const env = { LABELING_ADDR: addr, LABELING_TOKEN_FILE: TOKEN_FILE };
    const b = start([RLHF, "run", cfg, "--runs-dir", runsDir, "--run-id", "labeled"], env);
    const batchId = "labeled-rankings";
    const submitted = await until(b, async () => (await client.listBatches()).find((x) => x.batchId === batchId), testDeadlineMs(400_000));
    assert.ok(submitted, `the batch was submitted\n${b.out()}`);
    assert.equal(submitted.ranked, 0);
    assert.match(submitted.source, /^run labeled, rankings stage; simulated panel labelers=4 seed=\d+ noise_std=[0-9.e-]+$/);
    // Ctrl-C while it waits: cancelled (resumable), rlhf run showing where the wait stood.
    b.child.kill("SIGINT");
    assert.notEqual(await exitWithin(b, testDeadlineMs(120_000)), null, b.out());
    assert.match(b.out(), /Rankings +■ cancelled at ranked 0\/16 after/, b.out());

    // 3. Resumed: the same batch (not a second one), ranked by the simulated labelers meanwhile.
    const r = start([RLHF, "resume", join(runsDir, "labeled"), "--runs-dir", runsDir], env);
    let simulated = 0;
    while (r.child.exitCode === null) {
      const s = start([RLHF, "label", "simulate", "--url", url, "--admin-token-file", join(tmp, "labeling", "admin-token"), "--labelers", "4"]);
      assert.equal(await exitWithin(s, testDeadlineMs(120_000)), 0, s.out());
      simulated += Number(/ranked (\d+) comparisons/.exec(s.out())?.[1] ?? 0);
      await Promise.race([r.exited, sleep(1000)]);
    }
    assert.equal(await exitWithin(r, testDeadlineMs(500_000)), 0, r.out());
    assert.match(r.out(), /Rankings +✓ done in .*\(16 ranked prompts\)/, r.out());
    const batches = (await client.listBatches()).filter((x) => x.batchId.startsWith("labeled"));
    assert.deepEqual(batches.map((x) => x.batchId), [batchId], "one batch: the resume found it again");
    assert.equal(batches[0].comparisons, submitted.comparisons);
    assert.equal(batches[0].ranked, batches[0].comparisons);
    assert.ok(simulated >= batches[0].comparisons, `simulated labelers ranked ${simulated}`);
    // Comparison n was ranked by the simulated labeler n mod 4 (the in-process assignment) and
    // only by labelers of that number: the others passed it on (an overlapping one may get a
    // second ranking from the next `rlhf label simulate`'s labeler of the same number).
    const rankings = await client.listRankings(batchId);
    assert.equal(new Set(rankings.map((x) => x.key)).size, batches[0].comparisons);
    for (const x of rankings) assert.match(x.labeler, new RegExp(`^sim-0-${Number(/#(\d+)$/.exec(x.key)?.[1]) % 4}-`), x.key);
    const viaService = JSON.parse(readFileSync(join(runsDir, "labeled", "report.json"), "utf8")) as Report;

    // The same groups with the same ranks: the same reward model, to the last digit.
    console.log(`held-out accuracy: in-process ${inProcess.reward_model.heldout_accuracy}, through the labeling service ${viaService.reward_model.heldout_accuracy} (${viaService.reward_model.pairs.heldout} held-out pairs)`);
    assert.deepEqual(viaService.reward_model.pairs, inProcess.reward_model.pairs);
    assert.equal(viaService.reward_model.train_loss, inProcess.reward_model.train_loss, "the same training pairs, in the same order");
    assert.equal(viaService.reward_model.labeler_agreement, inProcess.reward_model.labeler_agreement);
    assert.equal(viaService.reward_model.heldout_accuracy, inProcess.reward_model.heldout_accuracy);
  } finally {
    client.close();
    serve.child.kill("SIGTERM");
    await exitWithin(serve, testDeadlineMs(30_000));
  }
});

test("rlhf run starts the labeling service as a sixth child for a run with rankings.source labeling and prints how to rank there", { timeout: testDeadlineMs(900_000) }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), "e2e-labeling-session-"));
  const runsDir = join(tmp, "runs");
  writeFileSync(join(tmp, "run.json"), JSON.stringify({ ...MICRO, rankings: { ...MICRO.rankings, source: "labeling" } }));
  const run = start([RLHF, "run", join(tmp, "run.json"), "--runs-dir", runsDir, "--run-id", "sixth"], { LABELING_ADDR: "" });
  const line = await until(run, async () => /simulated labelers: rlhf label simulate --url (\S+) --admin-token-file (\S+)/.exec(run.out()) ?? undefined, testDeadlineMs(300_000));
  assert.ok(line, run.out());
  assert.match(run.out(), /labeling: web UI http:\/\/127\.0\.0\.1:\d+\/ \(admin token in .*labeling\/admin-token\); the rankings stage waits for labelers there/);
  while (run.child.exitCode === null) {
    const s = start([RLHF, "label", "simulate", "--url", line[1], "--admin-token-file", line[2]]);
    const code = await exitWithin(s, testDeadlineMs(120_000));
    // The session stops its labeling service with the run: a last simulate may find it gone.
    if (code !== 0) await exitWithin(run, testDeadlineMs(30_000));
    assert.ok(code === 0 || run.child.exitCode !== null, s.out());
    await Promise.race([run.exited, sleep(1000)]);
  }
  assert.equal(await exitWithin(run, testDeadlineMs(500_000)), 0, run.out());
  assert.match(run.out(), /Rankings +✓ done in .*\(16 ranked prompts\)/, run.out());
  const report = JSON.parse(readFileSync(join(runsDir, "sixth", "report.json"), "utf8")) as Report;
  assert.ok(report.reward_model.pairs.heldout > 0);
  assert.match(readFileSync(join(runsDir, "labeling.log"), "utf8"), /labeling: web UI/, "its log beside the other services'");
});

/** Polls `f` until it gives a value, the process ends or `ms` pass (a hang's guard, not a speed check). */
async function until<T>(p: Proc, f: () => Promise<T | undefined>, ms: number): Promise<T | undefined> {
  const end = Date.now() + ms;
  while (Date.now() < end && p.child.exitCode === null) {
    const v = await f().catch(() => undefined);
    if (v !== undefined) return v;
    await sleep(500);
  }
  return undefined;
}
