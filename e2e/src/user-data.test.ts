// `rlhf run` on a user's own data files (examples/user-data) across real processes: the CLI
// starts the five services, the coordinator reads the files (paths relative to the config file),
// every stage runs on them (pretrain-mix cuts batches from the user's text), and the report marks
// what needs gold answers as not applicable. A bad line stops `rlhf run` before the model
// services start; a SIGKILLed `rlhf run` takes its five children with it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RLHF, ROOT, start, exitWithin } from "./helpers";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

const EXAMPLES = join(ROOT, "examples", "user-data");
const SERVICES = ["ppo-coordinator", "policy", "reward-model", "reference-model", "pretrain-mix"];

test("rlhf run examples/user-data/run.yaml: every stage on the user's files; the report says what does not apply", { timeout: testDeadlineMs(300_000) }, async () => {
  const runs = mkdtempSync(join(tmpdir(), "user-data-"));
  const started = Date.now();
  // A relative config path, as a user types it: its data paths are relative to its folder.
  const p = start([RLHF, "run", "examples/user-data/run.yaml", "--runs-dir", runs, "--run-id", "mine"], {}, ROOT);
  assert.equal(await exitWithin(p, testDeadlineMs(290_000)), 0, p.out());
  console.log(`rlhf run examples/user-data/run.yaml: ${((Date.now() - started) / 1000).toFixed(0)} s`);
  assert.match(p.out(), /run mine SUCCEEDED/);
  const dir = join(runs, "mine");
  const config = JSON.parse(readFileSync(join(dir, "config.json"), "utf8"));
  assert.equal(config.data.files.sft, join(EXAMPLES, "sft.jsonl"), "the resolved config records absolute paths");
  assert.equal(config.data.files.pretrain, join(EXAMPLES, "pretrain.txt"));
  const recorded = JSON.parse(readFileSync(join(dir, "data-files.json"), "utf8")) as { key: string; path: string; sha256: string }[];
  assert.deepEqual(recorded.map((f) => f.key), ["data.files.sft", "data.files.prompts", "data.files.eval_prompts", "data.files.rankings", "data.files.pretrain"]);

  // The user's pretraining text reached pretrain-mix (pretraining, PPO-ptx, validation loss).
  const mixLog = readFileSync(join(runs, "pretrain-mix.log"), "utf8");
  assert.match(mixLog, /"msg":"text corpus tokenised"/);
  assert.match(mixLog, /"corpus":"text:[0-9a-f]{12}"/);

  const events = readFileSync(join(dir, "events.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const ppo = events.filter((e) => e.metrics?.stage === "STAGE_PPO").map((e) => e.metrics.values);
  assert.equal(ppo.length, 2 * config.ppo.iterations, "every iteration of both variants");
  assert.ok(ppo.slice(0, config.ppo.iterations).every((v) => Number.isFinite(v["ptx/loss"])), "PPO-ptx mixed in the user's text");
  const ranked = events.filter((e) => e.stageProgress?.stage === "STAGE_RANKINGS").at(-1);
  assert.equal(ranked.stageProgress.totalSteps, 30, "the 30 comparisons of rankings.jsonl, nothing sampled");

  const report = JSON.parse(readFileSync(join(dir, "report.json"), "utf8"));
  assert.deepEqual(Object.keys(report.not_applicable).sort(), ["blocklist_rate", "exact_match", "gold_helpfulness", "gold_tie_share", "hallucination_rate", "labeler_agreement", "win_rate_vs_sft"]);
  for (const m of ["base", "sft", "ppo", "ppo_ptx"]) {
    const e = report.models[m];
    assert.equal(e.win_rate_vs_sft, null, m);
    assert.equal(e.gold_helpfulness, null, m);
    assert.equal(e.exact_match, null, m);
    assert.ok(Number.isFinite(e.pretrain_validation_loss) && e.pretrain_validation_loss > 0, `${m}: validation loss on the user's held-out text`);
  }
  // 6 of the 30 rankings held out (validation_fraction 0.2), K = 3: 3 pairs each.
  assert.equal(report.reward_model.pairs.heldout, 18);
  assert.ok(report.reward_model.heldout_accuracy >= 0 && report.reward_model.heldout_accuracy <= 1);
  assert.equal(report.reward_model.labeler_agreement, null);
  const win = report.acceptance.checks.find((c: { name: string }) => c.name === "ppo_ptx_win_rate");
  assert.match(win.not_applicable, /no gold answers/);
  const evalPrompts = readFileSync(join(EXAMPLES, "eval-prompts.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l).prompt);
  assert.deepEqual(report.samples.map((s: { prompt: string }) => s.prompt), evalPrompts.slice(0, 4));
  assert.ok(report.samples.every((s: { gold: unknown }) => s.gold === null));
  assert.match(readFileSync(join(dir, "report.html"), "utf8"), /does not apply: the data comes from files/);
});

test("rlhf run with a bad line in a data file: exit 2 naming file, line and field, before the model services start", { timeout: testDeadlineMs(120_000) }, async () => {
  const tmp = mkdtempSync(join(tmpdir(), "user-data-bad-"));
  writeFileSync(join(tmp, "sft.jsonl"), '{"prompt":"Question: hi?\\nAnswer:","completion":" hello"}\n{"prompt":"Question: and?\\nAnswer:","completion":""}\n');
  const yaml = readFileSync(join(EXAMPLES, "run.yaml"), "utf8").replace(/^( {4}\w+: )(\S+\.(jsonl|txt))/gm, (_, key: string, f: string) => `${key}${f === "sft.jsonl" ? join(tmp, f) : join(EXAMPLES, f)}`);
  assert.match(yaml, new RegExp(`sft: ${tmp}/sft\\.jsonl`));
  writeFileSync(join(tmp, "run.yaml"), yaml);
  const p = start([RLHF, "run", join(tmp, "run.yaml"), "--runs-dir", join(tmp, "runs")]);
  assert.equal(await exitWithin(p, testDeadlineMs(110_000)), 2, p.out());
  assert.match(p.out(), new RegExp(`rlhf: .*run\\.yaml: data\\.files\\.sft: ${tmp}/sft\\.jsonl:2: completion: empty text`));
  assert.equal(existsSync(join(tmp, "runs", "policy.log")), false, "the model services were not started");
});

test("a SIGKILLed rlhf run leaves no service behind: each child sees its stdin close and stops", { timeout: testDeadlineMs(240_000) }, async () => {
  const runs = mkdtempSync(join(tmpdir(), "user-data-kill-"));
  const p = start([RLHF, "run", join(EXAMPLES, "run.yaml"), "--runs-dir", runs, "--run-id", "killed"]);
  const deadline = Date.now() + testDeadlineMs(200_000);
  while (!/run killed started/.test(p.out()) && Date.now() < deadline && p.child.exitCode === null) await new Promise((r) => setTimeout(r, 200));
  assert.match(p.out(), /run killed started/);
  // Each service's pid: the CLI's children (Linux /proc), told apart by their `serve <name>` argument.
  const children = readdirSync("/proc")
    .filter((d) => /^\d+$/.test(d))
    .flatMap((d) => {
      try {
        const stat = readFileSync(`/proc/${d}/stat`, "utf8");
        const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        return ppid === p.child.pid ? [{ pid: Number(d), argv: readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0") }] : [];
      } catch {
        return []; // gone meanwhile
      }
    });
  const pids = SERVICES.map((s) => {
    const c = children.find((x) => x.argv.includes("serve") && x.argv.includes(s));
    assert.ok(c, `${s} is a child of the CLI: ${JSON.stringify(children)}`);
    return c.pid;
  });
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  assert.ok(pids.every(alive), "all five run");
  p.child.kill("SIGKILL");
  await p.exited;
  const gone = Date.now() + testDeadlineMs(60_000);
  while (pids.some(alive) && Date.now() < gone) await new Promise((r) => setTimeout(r, 200));
  const left = SERVICES.filter((_, i) => alive(pids[i]));
  for (const pid of pids) if (alive(pid)) process.kill(pid, "SIGKILL");
  assert.deepEqual(left, [], "no service outlives the CLI");
  // They stopped as on SIGTERM (gracefully), not by a kill.
  for (const s of SERVICES) assert.match(readFileSync(join(runs, `${s}.log`), "utf8"), /"signal":"SIGTERM"[^\n]*"msg":"signal received"/, s);
  // The coordinator recorded the run's end before it stopped: FAILED (resumable), the last event terminal, so `rlhf watch` ends.
  const run = JSON.parse(readFileSync(join(runs, "killed", "run.json"), "utf8"));
  assert.equal(run.state, "RUN_STATE_FAILED");
  assert.match(run.errorMessage, /the coordinator stopped while the run was in progress; ResumeRun continues it/);
  const last = JSON.parse(readFileSync(join(runs, "killed", "events.jsonl"), "utf8").trim().split("\n").at(-1) as string);
  assert.equal(last.stateChanged?.toState, "RUN_STATE_FAILED");
  assert.equal(existsSync(join(runs, "killed", "driver.json")), false);
});
