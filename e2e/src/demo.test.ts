// The README's main job, `rlhf demo --tiny`, end to end: the CLI starts the five services as
// child processes, runs every stage of the recipe, writes the run folder and stops them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RLHF, start, exitWithin } from "./helpers";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

// The deadlines only catch a hang: the run takes a few minutes on 2 cores, 30 is for a loaded machine.
test("rlhf demo --tiny runs every stage across real processes, and PPO raises the reward", { timeout: testDeadlineMs(1_800_000) }, async () => {
  const runs = mkdtempSync(join(tmpdir(), "demo-"));
  const started = Date.now();
  const p = start([RLHF, "demo", "--tiny", "--runs-dir", runs, "--run-id", "e2e"]);
  assert.equal(await exitWithin(p, testDeadlineMs(1_790_000)), 0, p.out());
  const seconds = (Date.now() - started) / 1000;
  console.log(`rlhf demo --tiny: ${seconds.toFixed(0)} s`);
  const out = p.out();
  assert.match(out, /run e2e SUCCEEDED/);
  for (const stage of ["Pretrain", "SFT", "Rankings", "Reward model", "PPO", "Evaluation"]) assert.match(out, new RegExp(`${stage}\\s+✓ done`), stage);
  const dir = join(runs, "e2e");
  for (const f of ["config.json", "run.json", "events.jsonl", "recipe-state.json", "report.json", "report.html"]) assert.ok(existsSync(join(dir, f)), f);
  const ck = readdirSync(join(dir, "checkpoints"));
  for (const c of ["base", "sft", "reward-model"]) assert.ok(ck.includes(c), `checkpoint ${c}`);
  assert.ok(ck.some((c) => /^ppo_ptx-\d{6}$/.test(c)) && ck.some((c) => /^ppo-\d{6}$/.test(c)), ck.join(", "));
  for (const svc of ["policy", "reward-model", "reference-model", "pretrain-mix", "ppo-coordinator"]) assert.ok(existsSync(join(runs, `${svc}.log`)), `${svc}.log`);

  const report = JSON.parse(readFileSync(join(dir, "report.json"), "utf8"));
  for (const m of ["base", "sft", "ppo", "ppo_ptx"]) assert.ok(Number.isFinite(report.models[m].pretrain_validation_loss), m);
  // The report says what its figures depend on: the policy's backend, and on torch its CPU kernels.
  if (report.run.backend === "torch") assert.match(report.run.compute, /^torch \d+\.\d+\.\d+, 1 thread, cpu, (portable|native) kernels/);
  else assert.equal(typeof report.run.compute, "string");
  const events = readFileSync(join(dir, "events.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
  const ppo = events.filter((e) => e.metrics?.stage === "STAGE_PPO").map((e) => e.metrics.values);
  const iterations = report.run.config.ppo.iterations;
  assert.equal(ppo.length, 2 * iterations, "every iteration of both variants reported its metrics");
  // The reward went up: PPO-ptx's last iterations score higher than its first ones.
  const reward = report.iterations.ppo_ptx.map((i: { values: Record<string, number> }) => i.values["objective/reward"]);
  const half = Math.floor(reward.length / 2);
  const mean = (a: number[]) => a.reduce((x, y) => x + y, 0) / a.length;
  console.log(`PPO-ptx reward per iteration: ${reward.map((r: number) => r.toFixed(3)).join(" ")}`);
  assert.ok(mean(reward.slice(-half)) > mean(reward.slice(0, half)), `reward went up: ${reward.join(", ")}`);

  // No OTLP endpoint: the CLI collected every service's spans into the run folder (OTLP JSON, one
  // ExportTraceServiceRequest per line), and the report shows one iteration's timeline.
  assert.match(out, /traces: \d+ spans in .*traces\.jsonl/);
  type Req = { resourceSpans: { resource: { attributes: { key: string; value: { stringValue?: string } }[] }; scopeSpans: { spans: { name: string }[] }[] }[] };
  const requests = readFileSync(join(dir, "traces.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l) as Req);
  const services = new Set(requests.flatMap((r) => r.resourceSpans.map((rs) => rs.resource.attributes.find((a) => a.key === "service.name")?.value.stringValue)));
  const five = ["policy", "ppo-coordinator", "pretrain-mix", "reference-model", "reward-model"];
  assert.deepEqual([...services].sort(), five, "spans of all five services in traces.jsonl");
  const timeline = report.timeline as { name: string; service: string; depth: number }[];
  assert.equal(timeline[0].name, "ppo.iteration");
  assert.deepEqual([...new Set(timeline.map((r) => r.service))].sort(), five, "the timeline has the services' server spans");
  for (const phase of ["ppo.generate", "ppo.score", "ppo.reference_logprobs", "ppo.evaluate", "ppo.update", "ppo.ptx_gradients"]) assert.ok(timeline.some((r) => r.name === phase && r.depth === 1), phase);
  assert.match(readFileSync(join(dir, "report.html"), "utf8"), /<section id="timeline">[\s\S]*<canvas id="chart-timeline">/);
});
