// Paths in requests stay inside the coordinator's roots, on a real server (127.0.0.1:0): the data
// files a run config names must be inside DATA_ROOT (symlinks resolved), run ids cannot leave
// RUNS_DIR, and an error about a data file never echoes its contents. No model service is called
// (StartRun with validate_only reads and checks the data files only).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { ppoCoordinator } from "@rlhf/proto";
import { createClient, createLogger, resultOrStatus as call, type KitClient } from "@rlhf/grpc-kit";
import { mergeRunConfigs, presetRunConfig } from "@rlhf/run-config";
import { startCoordinator, type CoordinatorApp } from "./app";
import { loadConfig } from "./config";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

const log = createLogger({ service: "confinement-test", level: "silent" });
const EXAMPLES = resolve(__dirname, "..", "..", "..", "examples", "user-data");
const work = mkdtempSync(join(tmpdir(), "coordinator-roots-"));
const data = join(work, "data");
const outside = join(work, "outside");
let app: CoordinatorApp;
let client: KitClient<ppoCoordinator.PpoCoordinatorServiceClient>;

before(async () => {
  cpSync(EXAMPLES, data, { recursive: true });
  cpSync(EXAMPLES, outside, { recursive: true });
  symlinkSync(outside, join(data, "link-out"));
  writeFileSync(join(data, "secret.jsonl"), "root:SECRET-HASH:19000:0:99999:7:::\n");
  const unused = "127.0.0.1:1"; // validate_only calls no model service
  app = await startCoordinator(
    loadConfig({ GRPC_PORT: "0", RUNS_DIR: join(work, "runs"), DATA_ROOT: data, POLICY_ADDR: unused, REWARD_MODEL_ADDR: unused, REFERENCE_MODEL_ADDR: unused, PRETRAIN_MIX_ADDR: unused, METRICS_PORT: "0" }),
    log,
  );
  client = createClient(ppoCoordinator.PpoCoordinatorServiceClient, app.server.address, { deadlineMs: testDeadlineMs(30_000) });
});
after(async () => {
  client.close();
  await app.stop(500);
});

/** The example user-data config with its data files in `dir` and `sft` replaced. */
function configJson(dir: string, sft = join(dir, "sft.jsonl")): string {
  const files = { sft, rankings: join(dir, "rankings.jsonl"), prompts: join(dir, "prompts.jsonl"), eval_prompts: join(dir, "eval-prompts.jsonl"), pretrain: join(dir, "pretrain.txt") };
  const over = {
    model: { tokenizer: "byte", n_positions: 256 },
    data: { max_prompt_tokens: 176, source: "files", files, pretrain_validation_fraction: 0.2 },
    rankings: { source: "file" },
    pretrain: { steps: 30, batch_size: 8, sequence_length: 64, warmup_steps: 3 },
    reward_model: { validation_fraction: 0.2 },
    ppo: { ptx: { sequence_length: 64 } },
    evaluation: { prompts: 12, samples_in_report: 4 },
  };
  return JSON.stringify(mergeRunConfigs(presetRunConfig("tiny"), over));
}
const validate = (json: string) => call(client.unary("startRun", { configJson: json, runId: "", displayName: "", validateOnly: true }));

test("data files inside DATA_ROOT are read; `..`, absolute paths and symlinks out of it are PERMISSION_DENIED naming the key", async () => {
  const ok = await validate(configJson(data));
  assert.equal(typeof ok, "object", String(ok));
  const denied = /^PERMISSION_DENIED: data\.files\.(sft|rankings): ".*" is outside DATA_ROOT$/;
  assert.match(String(await validate(configJson(outside))), denied);
  assert.match(String(await validate(configJson(data, join(data, "..", basename(outside), "sft.jsonl")))), denied);
  assert.match(String(await validate(configJson(data, join(data, "link-out", "sft.jsonl")))), denied);
  assert.match(String(await validate(configJson(data, "/etc/passwd"))), denied);
  assert.match(String(await validate(configJson(data, join(data, "sft\0.jsonl")))), /^INVALID_ARGUMENT: .*data\.files\.sft.*NUL/);
});

test("an error about a data file names file, line and field but never echoes the file's contents", async () => {
  const r = String(await validate(configJson(data, join(data, "secret.jsonl"))));
  assert.match(r, /^INVALID_ARGUMENT: data\.files\.sft: .*secret\.jsonl:1: json: invalid JSON/);
  assert.ok(!r.includes("SECRET") && !r.includes("root:"), r);
});

test("run ids cannot name a folder outside RUNS_DIR", async () => {
  for (const id of ["../x", "..", "/etc", "a/b", "A"]) {
    assert.match(String(await call(client.unary("getRun", { runId: id }))), /^INVALID_ARGUMENT: run_id: must be 1\.\.64 of \[a-z0-9-\]/, id);
    assert.match(String(await call(client.unary("resumeRun", { runId: id }))), /^INVALID_ARGUMENT: run_id/, id);
    assert.match(String(await call(client.unary("cancelRun", { runId: id }))), /^INVALID_ARGUMENT: run_id/, id);
    assert.match(String(await call(client.unary("startRun", { configJson: configJson(data), runId: id, displayName: "", validateOnly: false }))), /^INVALID_ARGUMENT: run_id/, id);
  }
  mkdirSync(join(work, "runs"), { recursive: true });
  symlinkSync(outside, join(work, "runs", "linked"));
  assert.match(String(await call(client.unary("startRun", { configJson: configJson(data), runId: "linked", displayName: "", validateOnly: false }))), /^PERMISSION_DENIED: run_id: ".*" is outside RUNS_DIR$/);
});
