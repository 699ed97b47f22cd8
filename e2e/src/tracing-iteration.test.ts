// Acceptance: one trace per PPO iteration across the five real service processes. `rlhf run`
// starts the coordinator, policy, reward-model, reference-model and pretrain-mix as child
// processes; they export OTLP/HTTP (JSON) to a receiver in this test (the user's endpoint, which
// the CLI passes through). Two PPO iterations, then: exactly one trace per iteration, with spans
// from all five services; every phase span a child of the iteration's root; every gRPC client span
// a child of the phase (or server span) that made the call; every server span a child of the
// client span that reached it, in another process.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { OTLP_KIND, startOtlpReceiver, spanRecordsOf, type SpanRecord } from "@rlhf/telemetry";
import { BACKEND, RLHF, start, exitWithin } from "./helpers";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

type Span = SpanRecord;

const SERVER = OTLP_KIND.server;
const CLIENT = OTLP_KIND.client;
const SERVICES = ["policy", "ppo-coordinator", "pretrain-mix", "reference-model", "reward-model"];

// Small enough for CI: no pretraining, one PPO variant (PPO-ptx), two iterations of two minibatches.
const CONFIG = {
  model: { preset: "tiny", n_positions: 256 },
  data: { builtin: { sft_prompts: 16, rm_prompts: 8, ppo_prompts: 8, eval_prompts: 4 } },
  pretrain: { enabled: false },
  sft: { epochs: 1, batch_size: 8 },
  rankings: { prompts: 8, max_new_tokens: 8 },
  reward_model: { epochs: 1, batch_size: 4 },
  ppo: { iterations: 2, prompts_per_iteration: 4, minibatch_size: 2, ppo_epochs: 1, max_new_tokens: 8, compare_without_ptx: false, ptx: { sequences: 2, sequence_length: 16 } },
  evaluation: { prompts: 4, max_new_tokens: 8, pretrain_validation_sequences: 2, samples_in_report: 1 },
  checkpoint: { every_iterations: 1, keep_last: 1 },
};

test("two PPO iterations across the five service processes: one trace each, linked across processes", { timeout: testDeadlineMs(300_000) }, async () => {
  const spans: Span[] = [];
  const receiver = await startOtlpReceiver({ onRequest: (req) => spans.push(...spanRecordsOf(req)) });
  const endpoint = receiver.url;

  const dir = mkdtempSync(join(tmpdir(), "tracing-iteration-"));
  writeFileSync(join(dir, "run.json"), JSON.stringify(CONFIG));
  const runs = join(dir, "runs");
  const started = Date.now();
  const cli = start([RLHF, "run", join(dir, "run.json"), "--runs-dir", runs, "--run-id", "traced", "--backend", BACKEND], {
    OTEL_EXPORTER_OTLP_ENDPOINT: endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: "http/json",
    OTEL_BSP_SCHEDULE_DELAY: "200",
  });
  assert.equal(await exitWithin(cli, testDeadlineMs(280_000)), 0, cli.out());
  console.log(`rlhf run (two PPO iterations, five processes, traced): ${((Date.now() - started) / 1000).toFixed(1)} s, ${spans.length} spans received`);
  await receiver.close();

  // The user's endpoint got everything: the CLI collected nothing into the run folder.
  assert.ok(!existsSync(join(runs, "traced", "traces.jsonl")), "with an endpoint set, no traces.jsonl");

  const run = spans.filter((s) => s.attributes["rlhf.run_id"] === "traced");
  const roots = run.filter((s) => s.name === "ppo.iteration");
  assert.deepEqual(roots.map((r) => r.attributes["rlhf.iteration"]).sort(), [1, 2], "one root span per iteration");
  for (const root of roots) {
    const it = root.attributes["rlhf.iteration"];
    assert.equal(root.parentSpanId || undefined, undefined, `iteration ${it}: the root has no parent (not a child of StartRun)`);
    assert.equal(root.service, "ppo-coordinator");
    assert.equal(root.attributes["rlhf.variant"], "ppo_ptx");
    assert.equal(root.attributes["rlhf.batch_size"], 4);
    assert.equal(typeof root.attributes["rlhf.weights_version"], "number");
    // One trace per iteration: every span of the iteration, in every process, is in the root's trace.
    const ofIteration = run.filter((s) => s.attributes["rlhf.iteration"] === it);
    assert.deepEqual([...new Set(ofIteration.map((s) => s.traceId))], [root.traceId], `iteration ${it}: one trace`);
    const trace = spans.filter((s) => s.traceId === root.traceId);
    assert.equal(trace.length, ofIteration.length, "every span of the trace carries the iteration");
    assert.deepEqual([...new Set(trace.map((s) => s.service))].sort(), SERVICES, `iteration ${it}: spans from all five services`);
    const byId = new Map(trace.map((s) => [s.spanId, s]));

    // The phases, each a child of the root.
    const phases = trace.filter((s) => s.service === "ppo-coordinator" && s.name.startsWith("ppo.") && s !== root);
    const count = (name: string) => phases.filter((p) => p.name === name).length;
    for (const [name, n] of [["ppo.generate", 1], ["ppo.score", 1], ["ppo.reference_logprobs", 1], ["ppo.evaluate", 1], ["ppo.advantages", 1], ["ppo.update", 2], ["ppo.ptx_gradients", 2], ["ppo.checkpoint", 1]] as const) {
      assert.equal(count(name), n, `iteration ${it}: ${n} × ${name}`);
    }
    for (const p of phases) assert.equal(p.parentSpanId, root.spanId, `${p.name} is a child of the iteration's root`);

    // Every call: client span under the phase (or the server span) that made it; server span under the client span, in another process.
    const calls: [phase: string, method: string, server: string][] = [
      ["ppo.generate", "PolicyService/Generate", "policy"],
      ["ppo.score", "RewardModelService/Score", "reward-model"],
      ["ppo.reference_logprobs", "ReferenceModelService/LogProbs", "reference-model"],
      ["ppo.evaluate", "PolicyService/Evaluate", "policy"],
      ["ppo.update", "PolicyService/PpoUpdate", "policy"],
      ["ppo.ptx_gradients", "PretrainMixService/PtxGradients", "pretrain-mix"],
      ["ppo.checkpoint", "PolicyService/SaveCheckpoint", "policy"],
    ];
    for (const [phase, method, server] of calls) {
      const servers = trace.filter((s) => s.kind === SERVER && s.name.endsWith(method));
      assert.equal(servers.length, count(phase), `iteration ${it}: one ${method} server span per ${phase}`);
      for (const sv of servers) {
        assert.equal(sv.service, server);
        const client = byId.get(sv.parentSpanId ?? "");
        assert.ok(client && client.kind === CLIENT && client.name === sv.name, `${method}: the server span's parent is the client span`);
        assert.equal(client.service, "ppo-coordinator", `${method}: the call crossed from the coordinator's process`);
        assert.equal(byId.get(client.parentSpanId ?? "")?.name, phase, `${method}: the client span's parent is ${phase}`);
        assert.equal(sv.attributes["rlhf.iteration"], it, `${method}: the iteration reached the server span as baggage`);
      }
    }
    // A nested call: pretrain-mix pulls the policy's weights inside PtxGradients. It calls from
    // its compute worker, which has no OpenTelemetry of its own: the worker times the call under a
    // span id it chose and its main thread records the client span with that id, so the pull's
    // server span (in the policy) hangs from a client span in pretrain-mix, which hangs from
    // PtxGradients' server span; the run's baggage reaches both.
    const pulls = trace.filter((s) => s.kind === SERVER && s.name.endsWith("PolicyService/StreamWeights"));
    assert.ok(pulls.length >= 1, "pretrain-mix pulled the policy's weights in the iteration's trace");
    for (const pull of pulls) {
      const client = byId.get(pull.parentSpanId ?? "");
      assert.ok(client && client.kind === CLIENT && client.name === pull.name && client.service === "pretrain-mix", `the pull's server span hangs from pretrain-mix's client span (got ${client?.service} ${client?.name})`);
      assert.equal(client.attributes["rpc.grpc.status_code"], 0, "the pull's client span says OK");
      // Two processes' clocks: ordered within 50 ms (a span in the wrong unit would be far off).
      assert.ok(client.startMs <= pull.startMs + 50 && client.endMs + 50 >= pull.endMs, `the client span's time covers the server span's (client ${client.startMs}..${client.endMs}, server ${pull.startMs}..${pull.endMs})`);
      const parent = byId.get(client.parentSpanId ?? "");
      assert.ok(parent && parent.kind === SERVER && parent.service === "pretrain-mix" && parent.name.endsWith("PtxGradients"), "the client span is inside pretrain-mix's PtxGradients server span");
      assert.equal(client.attributes["rlhf.iteration"], it, "the iteration reached the pull's client span as baggage");
      assert.equal(pull.attributes["rlhf.iteration"], it, "the iteration reached the pull's server span as baggage");
    }
    // Every span of the trace hangs from the root.
    for (const s of trace) {
      let p: Span | undefined = s;
      for (let guard = 0; p && p !== root && guard < 20; guard++) p = byId.get(p.parentSpanId ?? "");
      assert.equal(p, root, `${s.service} ${s.name} is connected to the root`);
    }
    // Attributes on the services' server spans.
    const gen = trace.find((s) => s.kind === SERVER && s.name.endsWith("PolicyService/Generate"))!;
    assert.equal(gen.attributes["rlhf.sequences"], 4);
    assert.ok((gen.attributes["rlhf.response_tokens"] as number) > 0);
    const ptx = trace.find((s) => s.kind === SERVER && s.name.endsWith("PtxGradients"))!;
    assert.equal(typeof ptx.attributes["rlhf.weights_version"], "number");
  }
  assert.notEqual(roots[0].traceId, roots[1].traceId, "two iterations, two traces");

  // The stages before PPO are traces too, with the services' spans under their calls.
  for (const [stage, method] of [
    ["stage.sft", "PolicyService/Sft"],
    ["stage.rankings", "PolicyService/Generate"],
    ["stage.reward_model", "RewardModelService/Train"],
    ["stage.evaluation", "PolicyService/Generate"],
  ]) {
    const root = run.find((s) => s.name === stage);
    assert.ok(root && !root.parentSpanId, `${stage} is a root span`);
    assert.ok(spans.some((s) => s.traceId === root.traceId && s.kind === SERVER && s.name.endsWith(method)), `${stage} holds ${method}`);
  }

  // The report's timeline has the iteration's phases (from the coordinator's memory of its spans).
  const report = JSON.parse(readFileSync(join(runs, "traced", "report.json"), "utf8")) as { timeline?: { name: string; depth: number }[] };
  assert.equal(report.timeline?.[0]?.name, "ppo.iteration");
  assert.ok(report.timeline?.some((r) => r.name === "ppo.update" && r.depth === 1));
});
