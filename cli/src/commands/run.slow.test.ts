import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { UsageError, parseArgs } from "../args";
import { cliEntryPoint } from "../run/session";
import { demoOptions, readConfigFile, resumeOptions, runOptions } from "./run";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

const tmp = mkdtempSync(join(tmpdir(), "rlhf-cli-run-"));
const args = (...argv: string[]) => parseArgs(argv, new Set(["help", "tiny", "no-cache", "tls"]));

/** Runs the built `rlhf` with `argv`: exit status and stderr. */
function rlhf(...argv: string[]): { status: number | null; stderr: string; stdout: string } {
  const r = spawnSync(process.execPath, [cliEntryPoint(), ...argv], { encoding: "utf8", timeout: testDeadlineMs(30_000) });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

test("argument mistakes exit 2 with one clear line, before anything starts", () => {
  const cases: [string[], string][] = [
    [["demo", "--bogus"], "rlhf: rlhf demo: unknown option --bogus (known: --tiny, --runs-dir, --run-id, --backend, --coordinator, --no-cache, --tls)\n"],
    [["demo", "extra"], 'rlhf: rlhf demo: unexpected argument "extra"\n'],
    [["demo", "--backend", "gpu"], 'rlhf: --backend must be one of tensorflow-gpu, tensorflow, torch, wasm, cpu, got "gpu"\n'],
    [["demo", "--run-id", "My_Run"], 'rlhf: --run-id must be 1-64 characters of a-z, 0-9 and -, got "My_Run"\n'],
    [["demo", "--runs-dir"], "rlhf: --runs-dir needs a value\n"],
    [["run", join(tmp, "missing.yaml")], `rlhf: config file ${join(tmp, "missing.yaml")} does not exist\n`],
    [["run", tmp, "--tiny"], "rlhf: rlhf run: unknown option --tiny (known: --runs-dir, --run-id, --backend, --coordinator, --no-cache, --tls)\n"],
    [["resume", join(tmp, "no-such-run")], `rlhf: run folder ${join(tmp, "no-such-run")} does not exist\n`],
    [["resume", join(tmp, "r"), "--run-id", "x"], "rlhf: rlhf resume: unknown option --run-id (known: --runs-dir, --backend, --coordinator, --tls)\n"],
    [["demo", "--coordinator", "http://x"], 'rlhf: --coordinator must look like host:port (e.g. 127.0.0.1:50050), got "http://x"\n'],
    [["demo", "--coordinator", "127.0.0.1:50050", "--runs-dir", tmp], "rlhf: --runs-dir concerns the services this command starts; with --coordinator it starts none (the cluster's services have their own settings)\n"],
    [["resume", "Bad_Id", "--coordinator", "127.0.0.1:50050"], 'rlhf: "Bad_Id" is not a run id (1-64 characters of a-z, 0-9 and -)\n'],
  ];
  for (const [argv, line] of cases) {
    const r = rlhf(...argv);
    assert.equal(r.status, 2, `${argv.join(" ")}: ${r.stderr}`);
    assert.equal(r.stderr, line, argv.join(" "));
  }
  const noConfig = rlhf("run");
  assert.equal(noConfig.status, 2);
  assert.match(noConfig.stderr, /^rlhf: which config file\?\nrlhf run <config\.json\|config\.yaml>/);
});

test("--help prints each command's usage", () => {
  for (const [cmd, first] of [
    ["demo", "rlhf demo [--tiny]"],
    ["run", "rlhf run <config.json|config.yaml>"],
    ["resume", "rlhf resume <run-folder|run-id>"],
  ]) {
    const r = rlhf(cmd, "--help");
    assert.equal(r.status, 0);
    assert.ok(r.stdout.startsWith(first), r.stdout);
  }
  assert.match(rlhf("help").stdout, /\n {2}resume <run-dir> {2}continue a failed or cancelled run/);
});

test("demo: the tiny or default preset, runs folder, run id and backend", () => {
  const tiny = demoOptions(args("demo", "--tiny", "--runs-dir", join(tmp, "runs"), "--run-id", "my-run-1", "--backend", "cpu"));
  assert.deepEqual(tiny, {
    action: { kind: "start", configJson: '{"preset":"tiny"}', runId: "my-run-1", displayName: "rlhf demo (tiny)", source: "the tiny demo config" },
    runsDir: join(tmp, "runs"),
    backend: "cpu",
  });
  const def = demoOptions(args("demo"));
  assert.equal(def.action.kind === "start" && def.action.configJson, '{"preset":"default"}');
  assert.equal(def.runsDir, resolve("runs"));
  assert.equal(def.backend, undefined);
  assert.throws(() => demoOptions(args("demo", "--tiny=yes")), /--tiny takes no value/);
  writeFileSync(join(tmp, "a-file"), "x");
  assert.throws(() => demoOptions(args("demo", "--runs-dir", join(tmp, "a-file"))), /is not a folder/);
  // --tls: mutual TLS among the services started here; nothing to start with --coordinator
  assert.equal(demoOptions(args("demo", "--tiny", "--tls")).tls, true);
  assert.throws(() => demoOptions(args("demo", "--tls=yes")), /--tls takes no value/);
  assert.throws(() => demoOptions(args("demo", "--tls", "--coordinator", "127.0.0.1:50050")), /--tls concerns the services this command starts/);
});

test("run: YAML and JSON configs become config_json; bad files are UsageErrors naming the file", () => {
  const yaml = join(tmp, "cfg.yaml");
  writeFileSync(yaml, "# my run\nmodel:\n  preset: tiny\nppo:\n  beta: 0.02\n  iterations: 3\nstages: [sft, ppo]\n");
  const o = runOptions(args("run", yaml, "--run-id", "exp-1"));
  assert.deepEqual(o.action, { kind: "start", configJson: '{"model":{"preset":"tiny"},"ppo":{"beta":0.02,"iterations":3},"stages":["sft","ppo"]}', runId: "exp-1", displayName: "cfg.yaml", source: yaml });
  const json = join(tmp, "cfg.json");
  writeFileSync(json, '{ "ppo": { "gamma": 27.8 } }');
  assert.equal(readConfigFile(json), '{"ppo":{"gamma":27.8}}');
  const bad = (name: string, text: string, message: RegExp) => {
    const p = join(tmp, name);
    writeFileSync(p, text);
    assert.throws(
      () => readConfigFile(p),
      (e: unknown) => e instanceof UsageError && message.test(e.message),
      name,
    );
  };
  bad("broken.json", '{"ppo": ', /^\/.*broken\.json: invalid JSON: /);
  bad("broken.yml", "ppo:\n  beta: [1, 2\n", /^\/.*broken\.yml: invalid YAML: /);
  bad("list.yaml", "- a\n- b\n", /list\.yaml: a run config must be an object \(a mapping of keys\), got a list$/);
  bad("empty.yaml", "", /empty\.yaml: a run config must be an object \(a mapping of keys\), got nothing$/);
  bad("number.json", "42", /number\.json: a run config must be an object \(a mapping of keys\), got number$/);
  // Nesting: refused before any service starts, whether the parser could read it or not.
  bad("deep.yaml", `ppo: ${"[".repeat(40)}${"]".repeat(40)}\n`, /deep\.yaml: is nested more than 32 levels deep \(a run config nests a few levels\)$/);
  bad("deeper.yaml", `ppo: ${"[".repeat(20_000)}${"]".repeat(20_000)}\n`, /deeper\.yaml: is nested too deeply to read \(a run config may nest at most 32 levels\)$/);
  bad("deep.json", `{"ppo": ${"[".repeat(20_000)}${"]".repeat(20_000)}}`, /deep\.json: is nested more than 32 levels deep/);
  assert.equal(JSON.parse(readConfigFile(join(tmp, "cfg.json"))).ppo.gamma, 27.8, "a config of ordinary depth still passes");
  assert.throws(() => readConfigFile(tmp), /is not a file/);
});

test("run: a config file's relative paths are made absolute from its folder", () => {
  const dir = join(tmp, "project", "configs");
  mkdirSync(dir, { recursive: true });
  const p = join(dir, "mine.yaml");
  writeFileSync(p, "data:\n  source: files\n  files:\n    sft: data/sft.jsonl\n    prompts: /abs/p.jsonl\nmodel:\n  base_checkpoint: ../gpt2\n");
  const cfg = JSON.parse(readConfigFile(p));
  assert.equal(cfg.data.files.sft, join(dir, "data", "sft.jsonl"));
  assert.equal(cfg.data.files.prompts, "/abs/p.jsonl");
  assert.equal(cfg.model.base_checkpoint, join(tmp, "project", "gpt2"));
});

test("resume: the folder's parent is the runs folder, its name the run id", () => {
  const dir = join(tmp, "runs", "demo-20250101-1");
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "run.json"), "{}");
  const expected = {
    action: { kind: "resume", runId: "demo-20250101-1", runDir: dir },
    runsDir: join(tmp, "runs"),
    backend: "wasm",
  };
  assert.deepEqual(resumeOptions(args("resume", dir, "--backend", "wasm")), expected);
  // a run id names its folder in --runs-dir
  assert.deepEqual(resumeOptions(args("resume", "demo-20250101-1", "--backend", "wasm", "--runs-dir", join(tmp, "runs"))), expected);
  assert.throws(
    () => resumeOptions(args("resume", "demo-2", "--runs-dir", join(tmp, "runs"))),
    (e: unknown) => e instanceof UsageError && e.message === `no run "demo-2" in ${join(tmp, "runs")} (--runs-dir) and no folder demo-2 here`,
  );
  // a folder that holds no run.json is no run folder, however it is named
  assert.throws(
    () => resumeOptions(args("resume", join(tmp, "runs"))),
    (e: unknown) => e instanceof UsageError && e.message.startsWith(`${join(tmp, "runs")} is not a run folder (it has no run.json) (runs in it: demo-20250101-1): rlhf resume takes a run folder (runs/<run id>) or a run id`),
  );
  const odd = join(tmp, "Not A Run");
  mkdirSync(odd, { recursive: true });
  writeFileSync(join(odd, "run.json"), "{}");
  assert.throws(() => resumeOptions(args("resume", odd)), /is not a run folder: its name "Not A Run" is not a run id/);
  writeFileSync(join(tmp, "plain-file"), "x");
  assert.throws(() => resumeOptions(args("resume", join(tmp, "plain-file"))), /is not a folder: rlhf resume takes a run folder/);
  assert.throws(() => resumeOptions(args("resume")), /which run folder\?/);
});

test("the built CLI: resume of a folder that is not a run folder exits 2 before any service starts (no log written); the hint names the command as it was started", () => {
  const cwd = join(tmp, "newcomer");
  mkdirSync(join(cwd, "runs", "demo-1"), { recursive: true });
  writeFileSync(join(cwd, "runs", "demo-1", "run.json"), "{}");
  mkdirSync(join(cwd, "examples", "user-data"), { recursive: true });
  writeFileSync(join(cwd, "examples", "user-data", "run.yaml"), "model:\n  preset: tiny\n");
  // `rlhf` on PATH is a link to dist/main.js (npm link) or a shim running it (pnpm link --global)
  const bin = join(tmp, "bin");
  mkdirSync(bin, { recursive: true });
  symlinkSync(cliEntryPoint(), join(bin, "rlhf"));
  const env = { ...process.env, npm_lifecycle_event: "", _: "", NODE_PATH: "" };
  const run = (script: string, extraEnv: Record<string, string>, ...argv: string[]) => spawnSync(process.execPath, [script, ...argv], { cwd, encoding: "utf8", timeout: testDeadlineMs(30_000), env: { ...env, ...extraEnv } });
  const viaBin = run(join(bin, "rlhf"), {}, "resume", "runs/");
  assert.equal(viaBin.status, 2, viaBin.stderr);
  assert.equal(viaBin.stderr, "rlhf: runs/ is not a run folder (it has no run.json) (runs in it: demo-1): rlhf resume takes a run folder (runs/<run id>) or a run id, e.g. rlhf resume runs/<run id>\n");
  const viaScript = run(cliEntryPoint(), { npm_lifecycle_event: "rlhf" }, "resume", "examples/user-data");
  assert.equal(viaScript.status, 2, viaScript.stderr);
  assert.equal(viaScript.stderr, "rlhf: examples/user-data is not a run folder (it has no run.json): rlhf resume takes a run folder (runs/<run id>) or a run id, e.g. pnpm rlhf resume runs/<run id>\n");
  const byName = run(cliEntryPoint(), {}, "resume", "user-data");
  assert.equal(byName.status, 2);
  assert.equal(byName.stderr, 'rlhf: no run "user-data" in runs (--runs-dir) and no folder user-data here\n');
  // nothing was written: no service started, no ppo-coordinator.log beside the folders
  assert.deepEqual(readdirSync(cwd).sort(), ["examples", "runs"]);
  assert.deepEqual(readdirSync(join(cwd, "runs")), ["demo-1"]);
  assert.deepEqual(readdirSync(join(cwd, "examples")), ["user-data"]);
  assert.deepEqual(readdirSync(join(cwd, "examples", "user-data")), ["run.yaml"]);
});

test("--coordinator: a running coordinator instead of local services; resume takes its run id", () => {
  const remote = demoOptions(args("demo", "--tiny", "--coordinator", "127.0.0.1:50050", "--run-id", "demo-1"));
  assert.equal(remote.coordinator, "127.0.0.1:50050");
  assert.equal(remote.backend, undefined);
  assert.equal(demoOptions(args("demo")).coordinator, undefined, "no flag, local services");
  assert.equal(demoOptions(args("demo", "--coordinator", "dns:///ppo-coordinator:50050")).coordinator, "dns:///ppo-coordinator:50050");
  // The run folder is on the coordinator's side: nothing is checked on this machine.
  assert.deepEqual(resumeOptions(args("resume", "demo-1", "--coordinator", "ppo-coordinator:50050")), {
    action: { kind: "resume", runId: "demo-1", runDir: "" },
    runsDir: resolve("runs"),
    coordinator: "ppo-coordinator:50050",
  });
  assert.throws(() => demoOptions(args("demo", "--coordinator", "127.0.0.1:50050", "--backend", "cpu")), (e: Error) => e instanceof UsageError && /--backend concerns the services this command starts/.test(e.message));
});
