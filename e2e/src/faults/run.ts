/**
 * The fault-injection suite (`pnpm faults`): the faults an unlucky operator meets, on real
 * processes, each case with its outcome in a report.
 *
 * - baseline: the tiny preset run straight through (`rlhf run`), the services' health sampled
 *   every 200 ms while it trains (answer times reported, never asserted);
 * - kill -9 of each service (the four model services and the coordinator) at a random PPO
 *   iteration (the seed is printed; `--seed N` repeats it): the CLI stops naming the dead
 *   service; the run folder ends with a terminal event, or, the coordinator killed, `rlhf watch`
 *   of it ends saying the run is resumable; `rlhf resume` finishes it with the baseline's figures
 *   (report.json without its timings);
 * - two runs at once on one coordinator: the second is refused naming the first, and a third on a
 *   second coordinator of the same model services is refused by their run lease; the first ends
 *   with the baseline's figures;
 * - a cancelled stream of each kind (PpoUpdate, Sft, Train, Normalize, UploadWeights) changes no
 *   weights, and a checkpoint load from a FIFO that never completes gets DEADLINE_EXCEEDED with
 *   health NOT_SERVING until it ends: the services' own tests of it, run here by name;
 * - four concurrent 400 MB uploads to a reference-model with MAX_UPLOAD_BYTES=1 GiB: two are
 *   refused RESOURCE_EXHAUSTED at their header, the process's RSS grows by less than the budget,
 *   and cancelled streams give their bytes back;
 * - health while the demo's model trains (a shortened default preset) on each backend: sampled
 *   and reported, not asserted.
 *
 *   node e2e/dist/faults/run.js [--out DIR] [--seed N] [--only TEXT]      (pnpm faults)
 *
 * Writes DIR/faults-report.json and DIR/faults-report.md; exit status 1 when a case failed.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { freePort, checkHealth, createClient, resultOrStatus } from "@rlhf/grpc-kit";
import { common, ppoCoordinator, referenceModel } from "@rlhf/proto";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";
import { loadAddon } from "@rlhf/torch-backend";
import { SERVICES, addressOf, pct, poll } from "../bench/health";
import { differences, figures } from "../figures";

const ROOT = resolve(__dirname, "..", "..", "..");
const RLHF = join(ROOT, "cli", "dist", "main.js");
const MODEL_SERVICES = ["policy", "reward-model", "reference-model", "pretrain-mix"] as const;
/** The run every case repeats: the tiny preset (8 PPO iterations per variant, checkpoints every 4). */
const CONFIG = { preset: "tiny", checkpoint: { every_iterations: 2 } };
const PPO_STEPS = 16;
/**
 * The demo's model (the default preset: 64 wide, 4 layers) on a shortened run, every stage: what
 * the health cases train while they sample health on each backend. Every step is a full-size step
 * of the demo (its batch sizes and sequence length); only the number of steps is cut, since what is
 * measured is health during a step, not what the run learns (about 15 s on torch and 50 s on wasm
 * on a 2-core machine; 3 times that with the old 30 pretraining steps, 512 SFT prompts and 3 PPO
 * iterations per variant, which gave no other finding).
 */
const DEMO_SHORT = {
  preset: "default",
  data: { builtin: { sft_prompts: 128, rm_prompts: 64, ppo_prompts: 128, eval_prompts: 32 } },
  pretrain: { steps: 10, warmup_steps: 2, cache: false },
  sft: { epochs: 1 },
  rankings: { prompts: 64 },
  reward_model: { epochs: 1 },
  ppo: { iterations: 1, warmup_iterations: 0 },
  evaluation: { prompts: 32, pretrain_validation_sequences: 16 },
  checkpoint: { every_iterations: 1 },
};
/** Health answer times of each service during one run (reported, never asserted). */
type HealthTable = Record<string, { checks: number; medianMs: number; p99Ms: number; maxMs: number; overOneSecond: number }>;
/** Only to catch a hang (a tiny run takes about a minute on 2 cores), scaled like the tests' deadlines. */
const RUN_DEADLINE_MS = testDeadlineMs(Number(process.env.RLHF_FAULTS_RUN_DEADLINE_MS ?? 900_000));

interface Case {
  name: string;
  outcome: "pass" | "fail";
  detail: string;
  seconds: number;
}

interface Proc {
  child: ChildProcess;
  out: () => string;
  exited: Promise<number | null>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function start(args: string[], env: Record<string, string | undefined> = {}): Proc {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
  let buf = "";
  child.stdout?.on("data", (d) => (buf += d));
  child.stderr?.on("data", (d) => (buf += d));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return { child, out: () => buf, exited };
}

async function exitWithin(p: Proc, ms: number): Promise<number | null> {
  const t = setTimeout(() => p.child.kill("SIGKILL"), ms);
  const code = await p.exited;
  clearTimeout(t);
  return code;
}

/** The pid of the child of `parent` serving `service` (Linux /proc: `... serve <service>`). */
function servicePid(parent: number, service: string): number | undefined {
  for (const d of readdirSync("/proc").filter((x) => /^\d+$/.test(x))) {
    try {
      const stat = readFileSync(`/proc/${d}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      if (ppid !== parent) continue;
      const argv = readFileSync(`/proc/${d}/cmdline`, "utf8").split("\0");
      if (argv.includes("serve") && argv.includes(service)) return Number(d);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

/** The run folder's events, as parsed JSON (a torn last line left out). */
function events(runDir: string): Record<string, unknown>[] {
  let text = "";
  try {
    text = readFileSync(join(runDir, "events.jsonl"), "utf8");
  } catch {
    return [];
  }
  return text.split("\n").flatMap((l) => {
    try {
      return l.trim() ? [JSON.parse(l) as Record<string, unknown>] : [];
    } catch {
      return [];
    }
  });
}

/** The last PPO metrics step the run folder records (0 before PPO). */
function ppoStep(runDir: string): number {
  let step = 0;
  for (const e of events(runDir)) {
    const m = e.metrics as { stage?: string; step?: number } | undefined;
    if (m?.stage === "STAGE_PPO" && typeof m.step === "number") step = Math.max(step, m.step);
  }
  return step;
}

/** A small seeded generator (mulberry32) for the kill points. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `--only TEXT`: only the cases whose name contains TEXT (and the baseline they compare with). */
let only: string | undefined;

async function timed(cases: Case[], name: string, fn: () => Promise<string>): Promise<void> {
  if (only && !name.startsWith("baseline") && !name.includes(only)) return;
  const t0 = Date.now();
  let c: Case;
  try {
    c = { name, outcome: "pass", detail: await fn(), seconds: 0 };
  } catch (e) {
    c = { name, outcome: "fail", detail: (e as Error).message.split("\n").slice(0, 12).join("\n"), seconds: 0 };
  }
  c.seconds = Math.round((Date.now() - t0) / 100) / 10;
  cases.push(c);
  console.log(`${c.outcome === "pass" ? "PASS" : "FAIL"}  ${name} (${c.seconds} s): ${c.detail.split("\n")[0]}`);
}

function check(ok: unknown, message: string): asserts ok {
  if (!ok) throw new Error(message);
}

async function main(): Promise<number> {
  const argv = process.argv.slice(2);
  const flag = (name: string) => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const out = resolve(flag("out") ?? mkdtempSync(join(tmpdir(), "rlhf-faults-")));
  only = flag("only");
  const seed = Number(flag("seed") ?? randomBytes(2).readUInt16BE(0));
  const runsDir = join(out, "runs");
  mkdirSync(runsDir, { recursive: true });
  const configPath = join(out, "run.json");
  writeFileSync(configPath, JSON.stringify(CONFIG));
  const random = rng(seed);
  console.log(`fault-injection suite: seed ${seed}, folder ${out}`);
  const cases: Case[] = [];
  const cli = (args: string[], env: Record<string, string | undefined> = {}) => start([RLHF, ...args], env);
  const run = (runId: string) => cli(["run", configPath, "--runs-dir", runsDir, "--run-id", runId]);
  /** Per run sampled: each service's health answer times. */
  const health: Record<string, HealthTable> = {};
  /** Runs `p` (an `rlhf run` whose services log to `dir`) to its end, checking every service's health every 200 ms. */
  const sampleHealth = async (p: Proc, dir: string, label: string): Promise<string> => {
    while (!/services ready/.test(p.out()) && p.child.exitCode === null) await sleep(100);
    let done = false;
    void p.exited.then(() => (done = true));
    const sampled = Promise.all(SERVICES.map(async (s) => [s, await poll(addressOf(dir, s) ?? "127.0.0.1:1", () => done, 200)] as const));
    const code = await exitWithin(p, RUN_DEADLINE_MS);
    check(code === 0, `rlhf run exited ${code}:\n${p.out().slice(-2000)}`);
    const table: HealthTable = (health[label] = {});
    for (const [s, ms] of await sampled) {
      table[s] = { checks: ms.length, medianMs: round(pct(ms, 0.5)), p99Ms: round(pct(ms, 0.99)), maxMs: round(Math.max(...ms)), overOneSecond: ms.filter((x) => x > 1000).length };
    }
    const worst = Object.entries(table).sort((a, b) => b[1].maxMs - a[1].maxMs)[0];
    const over = Object.values(table).reduce((a, h) => a + h.overOneSecond, 0);
    return `SUCCEEDED; slowest health answer ${worst[1].maxMs} ms (${worst[0]}), ${over} of ${Object.values(table).reduce((a, h) => a + h.checks, 0)} checks over 1 s`;
  };

  // 1. The baseline, with the services' health sampled while it trains.
  await timed(cases, "baseline: the tiny preset straight through; health of every service sampled every 200 ms", () => sampleHealth(run("straight"), runsDir, "baseline (tiny preset)"));
  const straight = join(runsDir, "straight");
  check(existsSync(join(straight, "report.json")), "the baseline run has no report: nothing to compare with");
  const baseline = figures(straight);

  // 2. kill -9 of each service at a random PPO iteration, then resume.
  for (const service of [...MODEL_SERVICES, "ppo-coordinator"]) {
    const at = 1 + Math.floor(random() * (PPO_STEPS - 1));
    const runId = `kill-${service}`;
    await timed(cases, `kill -9 ${service} after PPO iteration ${at} of ${PPO_STEPS}; resume`, async () => {
      const dir = join(runsDir, runId);
      const p = run(runId);
      while (ppoStep(dir) < at && p.child.exitCode === null) await sleep(50);
      check(p.child.exitCode === null, `the run ended before the kill:\n${p.out().slice(-1500)}`);
      const pid = servicePid(p.child.pid as number, service);
      check(pid, `no child serving ${service}`);
      process.kill(pid, "SIGKILL");
      const code = await exitWithin(p, testDeadlineMs(120_000));
      check(code === 1, `rlhf run exited ${code} after the kill (expected 1):\n${p.out().slice(-1500)}`);
      check(p.out().includes(service) && /resume it with: /.test(p.out()), `the CLI names neither the dead service nor the resume command:\n${p.out().slice(-1500)}`);
      const killedAt = ppoStep(dir);
      let end: string;
      if (service === "ppo-coordinator") {
        // Nothing could record the run's end; `rlhf watch` must still end.
        const w = spawnSync(process.execPath, [RLHF, "watch", dir], { encoding: "utf8", timeout: testDeadlineMs(120_000) });
        check(w.status === 1 && /did not end: the coordinator running it .* it is resumable/.test(w.stdout), `rlhf watch of the folder: status ${w.status}:\n${w.stdout.slice(-800)}${w.stderr}`);
        end = "rlhf watch ends (coordinator gone)";
      } else {
        const last = events(dir).at(-1) as { stateChanged?: { toState?: string } } | undefined;
        check(last?.stateChanged?.toState === "RUN_STATE_FAILED", `the run folder's last event is not a terminal FAILED: ${JSON.stringify(last).slice(0, 300)}`);
        end = "run folder ends FAILED";
      }
      const r = cli(["resume", dir]);
      const rc = await exitWithin(r, RUN_DEADLINE_MS);
      check(rc === 0, `rlhf resume exited ${rc}:\n${r.out().slice(-2000)}`);
      const diff = differences(baseline, figures(dir));
      check(diff.length === 0, `${diff.length} figures differ from the baseline's, e.g. ${diff.slice(0, 5).join(", ")}`);
      return `killed at PPO step ${killedAt}; CLI exit 1 naming it; ${end}; resumed: every report figure equals the baseline's`;
    });
  }

  // 3. Two runs at once on one coordinator (five `rlhf serve` processes, as a cluster runs them).
  await timed(cases, "two runs at once on one coordinator, a third on another coordinator of the same services: both refused, the first unaffected", async () => {
    const shared = join(runsDir, "shared");
    mkdirSync(shared, { recursive: true });
    const tokenFile = join(out, "token");
    writeFileSync(tokenFile, randomBytes(32).toString("base64url") + "\n", { mode: 0o600 });
    const ports = Object.fromEntries(await Promise.all(SERVICES.map(async (s) => [s, await freePort()] as const)));
    const addr = (s: string) => `127.0.0.1:${ports[s]}`;
    const env = (s: string): Record<string, string> => ({
      GRPC_HOST: "127.0.0.1",
      RLHF_AUTH_TOKEN_FILE: tokenFile,
      METRICS_PORT: "0",
      TOKENIZER: "bpe",
      CHECKPOINT_ROOT: shared,
      DATA_ROOT: shared,
      RUNS_DIR: shared,
      POLICY_ADDR: addr("policy"),
      ...(s === "ppo-coordinator" ? { REWARD_MODEL_ADDR: addr("reward-model"), REFERENCE_MODEL_ADDR: addr("reference-model"), PRETRAIN_MIX_ADDR: addr("pretrain-mix") } : {}),
      ...(s === "policy" ? { REWARD_MODEL_ADDR: addr("reward-model") } : {}),
    });
    const procs = SERVICES.map((s) => start([RLHF, "serve", s, "--port", String(ports[s])], env(s)));
    // A second coordinator on the same model services (two teams, one GPU node): the leases.
    const otherPort = await freePort();
    mkdirSync(join(shared, "other"), { recursive: true });
    procs.push(start([RLHF, "serve", "ppo-coordinator", "--port", String(otherPort)], { ...env("ppo-coordinator"), RUNS_DIR: join(shared, "other") }));
    try {
      // Up once health answers (a model service without a model answers NOT_SERVING until the run loads one).
      for (const s of SERVICES) {
        for (let i = 0; (await checkHealth(addr(s), "", 2000).catch(() => "")) === ""; i++) {
          check(i < 900 && procs[SERVICES.indexOf(s)].child.exitCode === null, `${s} did not start:\n${procs[SERVICES.indexOf(s)].out().slice(-1500)}`);
          await sleep(200);
        }
      }
      const client = { RLHF_AUTH_TOKEN_FILE: tokenFile };
      const first = cli(["run", configPath, "--coordinator", addr("ppo-coordinator"), "--run-id", "first"], client);
      while (!/run first started/.test(first.out()) && first.child.exitCode === null) await sleep(100);
      const second = cli(["run", configPath, "--coordinator", addr("ppo-coordinator"), "--run-id", "second"], client);
      const secondCode = await exitWithin(second, testDeadlineMs(120_000));
      check(secondCode === 2 && /run first is RUN_STATE_(RUNNING|PENDING) on this coordinator/.test(second.out()), `the second run: exit ${secondCode}:\n${second.out().slice(-1500)}`);
      for (let i = 0; (await checkHealth(`127.0.0.1:${otherPort}`, "", 2000).catch(() => "")) !== "SERVING"; i++) {
        check(i < 900 && procs[procs.length - 1].child.exitCode === null, `the other coordinator did not start:\n${procs[procs.length - 1].out().slice(-1500)}`);
        await sleep(200);
      }
      const third = cli(["run", configPath, "--coordinator", `127.0.0.1:${otherPort}`, "--run-id", "third"], client);
      const thirdCode = await exitWithin(third, testDeadlineMs(120_000));
      check(thirdCode === 2 && /policy is leased to run first \(held .*\): RunLease of run third refused/.test(third.out()), `the other coordinator's run: exit ${thirdCode}:\n${third.out().slice(-1500)}`);
      const firstCode = await exitWithin(first, RUN_DEADLINE_MS);
      check(firstCode === 0, `the first run exited ${firstCode}:\n${first.out().slice(-1500)}`);
      const diff = differences(baseline, figures(join(shared, "first")));
      check(diff.length === 0, `${diff.length} figures of the first run differ from the baseline's, e.g. ${diff.slice(0, 5).join(", ")}`);
      return "second refused (exit 2, FAILED_PRECONDITION naming run first); third, on another coordinator of the same services, refused (exit 2, policy leased to run first); the first SUCCEEDED with the baseline's figures";
    } finally {
      for (const p of procs) p.child.kill("SIGTERM");
      await Promise.all(procs.map((p) => exitWithin(p, testDeadlineMs(30_000))));
    }
  });

  // 4. A cancelled stream of each kind changes nothing, and a checkpoint load that never ends
  // wedges nobody: the services' own tests of it (each file runs whole, once: its tests share the
  // service they start; the ones of each case are named).
  const serviceCases: [name: string, pkg: string, tests: RegExp][] = [
    ["cancelled streams (services/policy): weights unchanged", "services/policy", /^(Sft: loss|PpoUpdate: bad)/],
    ["cancelled streams (services/reward-model): weights unchanged", "services/reward-model", /cancel/i],
    ["cancelled streams (services/reference-model): weights unchanged", "services/reference-model", /cancel/i],
    ["a checkpoint load from a FIFO that never completes (services/reference-model): DEADLINE_EXCEEDED for its caller, NOT_SERVING until it ends", "services/reference-model", /never completes/],
  ];
  const testRuns = new Map<string, ReturnType<typeof spawnSync>>();
  for (const [name, pkg, names] of serviceCases) {
    await timed(cases, name, async () => {
      const r = testRuns.get(pkg) ?? spawnSync(process.execPath, ["--import", "tsx", "--test", "--test-force-exit", "src/service.test.ts"], { cwd: join(ROOT, pkg), encoding: "utf8", timeout: testDeadlineMs(900_000) });
      testRuns.set(pkg, r);
      const out = String(r.stdout);
      const result = (ok: string) => [...out.matchAll(new RegExp(`^${ok} \\d+ - (.*)$`, "gm"))].map((m) => m[1]).filter((n) => names.test(n));
      const passed = result("ok");
      const failed = result("not ok");
      check(r.status === 0 && failed.length === 0 && passed.length > 0, `status ${r.status}; failed: ${failed.join("; ") || "none"}\n${out.slice(-1500)}${String(r.stderr).slice(-500)}`);
      return passed.join("; ");
    });
  }

  // 5. Large uploads at once share the service's MAX_UPLOAD_BYTES: four streams of a 400 MB set
  // against a 1 GiB budget; two are taken, two refused at their header; the process stays within
  // the budget; cancelled streams give their bytes back.
  await timed(cases, "four concurrent 400 MB uploads against MAX_UPLOAD_BYTES=1 GiB: two refused RESOURCE_EXHAUSTED, RSS within budget", async () => {
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const budget = 1024 ** 3;
    const svc = start([RLHF, "serve", "reference-model", "--port", String(port), "--init", "tiny"], { GRPC_HOST: "127.0.0.1", METRICS_PORT: "0", MAX_UPLOAD_BYTES: String(budget), RLHF_AUTH_TOKEN_FILE: "" });
    const client = createClient(referenceModel.ReferenceModelServiceClient, address, { deadlineMs: testDeadlineMs(300_000), token: null });
    const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${svc.child.pid}/status`, "utf8"))?.[1] ?? NaN) * 1024;
    try {
      for (let i = 0; (await checkHealth(address, "", 2000).catch(() => "")) !== "SERVING"; i++) {
        check(i < 900 && svc.child.exitCode === null, `reference-model did not start:\n${svc.out().slice(-1500)}`);
        await sleep(200);
      }
      const before = rss();
      const bytes = 400_000_000;
      const header: common.TensorSetChunk = {
        part: {
          $case: "header",
          header: {
            kind: common.TensorSetKind.TENSOR_SET_KIND_WEIGHTS,
            weights: { modelId: "upload", version: 1, source: "" },
            tensors: [{ name: "wte.weight", dtype: common.Dtype.DTYPE_FLOAT32, shape: [bytes / 4], byteLength: bytes }],
            totalBytes: bytes,
            digestAlgorithm: common.DigestAlgorithm.DIGEST_ALGORITHM_SHA256,
            modelConfig: undefined,
          },
        },
      };
      const piece = Buffer.alloc(1 << 20, 7);
      const calls = [0, 1, 2, 3].map(() => client.clientStream("uploadWeights"));
      // Each stream sends its header, then up to 200 MiB of data while the server keeps it.
      const outcomes = await Promise.all(
        calls.map(async (c) => {
          try {
            await c.write({ chunk: header });
            for (let off = 0; off < 200 * (1 << 20); off += piece.length) {
              await c.write({ chunk: { part: { $case: "data", data: { tensorIndex: 0, offset: off, data: piece } } } });
            }
            return "held";
          } catch (e) {
            return String(e);
          }
        }),
      );
      // The refused ones answer at once; their writes fail. Let the kept ones settle, then measure.
      await sleep(500);
      const peak = rss();
      const refused = outcomes.filter((o) => /RESOURCE_EXHAUSTED: chunk\[0\]\.header\.total_bytes: 400000000 bytes would take the uploads in progress past their shared limit of 1073741824 bytes/.test(o));
      check(refused.length === 2 && outcomes.filter((o) => o === "held").length === 2, `expected two held, two refused: ${outcomes.map((o) => o.slice(0, 160)).join(" | ")}`);
      check(peak - before < budget, `RSS grew by ${Math.round((peak - before) / 2 ** 20)} MiB, past the ${budget / 2 ** 20} MiB budget`);
      // Cancelled streams give their bytes back: a new upload's header is taken again.
      for (const c of calls) c.cancel();
      await sleep(500);
      const again = client.clientStream("uploadWeights");
      await again.write({ chunk: header });
      await sleep(300);
      again.cancel();
      const after = await again.end().then(
        () => "ok",
        (e: unknown) => String(e),
      );
      check(/CANCELLED/.test(after), `after the cancels a new upload was not taken: ${after.slice(0, 300)}`);
      check((await checkHealth(address, "", 5000)) === "SERVING", "the service is not SERVING after the uploads");
      return `two held, two refused at their header; RSS ${Math.round(before / 2 ** 20)} -> ${Math.round(peak / 2 ** 20)} MiB with 400 MiB of data held (budget 1024 MiB); bytes given back on cancel`;
    } finally {
      client.close();
      svc.child.kill("SIGTERM");
      await exitWithin(svc, testDeadlineMs(30_000));
    }
  });

  // 6. Data files that would read forever (/dev/zero), block for a writer (a FIFO) or fill memory
  // (1 GB), and a model no service could train, are refused at StartRun naming the key, before
  // anything is read or any service called; the coordinator's RSS stays flat and it keeps serving.
  await timed(cases, "StartRun with /dev/zero, a FIFO or a 1 GB file as a data file, or an over-large model: INVALID_ARGUMENT naming the key, coordinator RSS flat", async () => {
    const data = join(out, "bad-data");
    cpSync(join(ROOT, "examples", "user-data"), data, { recursive: true });
    const fifo = join(data, "pipe.jsonl");
    check(spawnSync("mkfifo", [fifo]).status === 0, `mkfifo ${fifo} failed`);
    const big = join(data, "big.jsonl");
    writeFileSync(big, "");
    truncateSync(big, 1024 ** 3); // sparse: nothing written, nothing to read
    const port = await freePort();
    const address = `127.0.0.1:${port}`;
    const unused = "127.0.0.1:1"; // nothing here may reach a model service
    const env = { GRPC_HOST: "127.0.0.1", METRICS_PORT: "0", RLHF_AUTH_TOKEN_FILE: "", RUNS_DIR: join(out, "bad-data-runs"), DATA_ROOT: `${data}:/dev`, POLICY_ADDR: unused, REWARD_MODEL_ADDR: unused, REFERENCE_MODEL_ADDR: unused, PRETRAIN_MIX_ADDR: unused };
    const svc = start([RLHF, "serve", "ppo-coordinator", "--port", String(port)], env);
    const client = createClient(ppoCoordinator.PpoCoordinatorServiceClient, address, { deadlineMs: testDeadlineMs(120_000), token: null });
    const rss = () => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${svc.child.pid}/status`, "utf8"))?.[1] ?? NaN) * 1024;
    const files = (sft: string) => ({ sft, rankings: join(data, "rankings.jsonl"), prompts: join(data, "prompts.jsonl"), eval_prompts: join(data, "eval-prompts.jsonl"), pretrain: join(data, "pretrain.txt") });
    const config = (over: object) => JSON.stringify({ preset: "tiny", data: { source: "files", files: files(join(data, "sft.jsonl")), pretrain_validation_fraction: 0.2 }, rankings: { source: "file" }, ...over });
    const bad: Array<[what: string, json: string, expect: RegExp]> = [
      ["/dev/zero", config({ data: { source: "files", files: files("/dev/zero") } }), /^INVALID_ARGUMENT: .*data\.files\.sft.*\/dev\/zero: file: is a device, not a regular file/],
      ["a FIFO", config({ data: { source: "files", files: files(fifo) } }), /^INVALID_ARGUMENT: .*data\.files\.sft.*pipe\.jsonl: file: is a FIFO, not a regular file/],
      ["a 1 GB file", config({ data: { source: "files", files: files(big) } }), /^INVALID_ARGUMENT: .*data\.files\.sft.*big\.jsonl: file: is 1073741824 bytes, more than the limit of/],
      ["n_embd 16384, 256 layers", config({ model: { n_embd: 16384, n_layer: 256, n_head: 16 } }), /^INVALID_ARGUMENT: .*model\.n_layer.*needs an estimated \d+ GiB to train .* more than the limit of 32 GiB/],
    ];
    try {
      for (let i = 0; (await checkHealth(address, "", 2000).catch(() => "")) !== "SERVING"; i++) {
        check(i < 900 && svc.child.exitCode === null, `the coordinator did not start:\n${svc.out().slice(-1500)}`);
        await sleep(200);
      }
      const before = rss();
      const seen: string[] = [];
      for (const [what, configJson, expect] of bad) {
        for (const validateOnly of [true, false]) {
          const r = await resultOrStatus(client.unary("startRun", { configJson, runId: "", displayName: "", validateOnly }));
          const got = typeof r === "string" ? r : `OK (run ${r.run?.id ?? "none"})`;
          check(expect.test(got), `${what} (validate_only ${validateOnly}): ${got.slice(0, 400)}`);
        }
        seen.push(what);
      }
      const after = rss();
      check(after - before < 256 * 2 ** 20, `the coordinator's RSS grew by ${Math.round((after - before) / 2 ** 20)} MiB`);
      const runs = await client.unary("listRuns", { pageSize: 10, pageToken: "", states: [] });
      check(runs.runs.length === 0, `a refused StartRun left runs behind: ${runs.runs.map((r) => r.id).join(", ")}`);
      check((await checkHealth(address, "", 5000)) === "SERVING", "the coordinator is not SERVING after the refusals");
      return `each refused INVALID_ARGUMENT naming the key (${seen.join(", ")}; validate_only and a real start); RSS ${Math.round(before / 2 ** 20)} -> ${Math.round(after / 2 ** 20)} MiB; no run created`;
    } finally {
      client.close();
      svc.child.kill("SIGTERM");
      await exitWithin(svc, testDeadlineMs(30_000));
    }
  });

  // 7. Health while the demo's model trains, on each backend this machine has (reported, not
  // asserted: a loaded machine's answer times say little; the run must succeed).
  const demoConfig = join(out, "demo-short.json");
  writeFileSync(demoConfig, JSON.stringify(DEMO_SHORT));
  for (const backend of loadAddon().ok ? ["torch", "wasm"] : ["wasm"]) {
    await timed(cases, `health while the demo model trains (shortened default preset, ${backend})`, async () => {
      const dir = join(out, `demo-${backend}`);
      return sampleHealth(cli(["run", demoConfig, "--runs-dir", dir, "--backend", backend]), dir, `demo model, ${backend}`);
    });
  }

  const report = { seed, folder: out, config: CONFIG, cases, health };
  writeFileSync(join(out, "faults-report.json"), JSON.stringify(report, null, 2) + "\n");
  const md = [
    `# Fault-injection report (seed ${seed})`,
    "",
    "| case | outcome | seconds | detail |",
    "|---|---|---|---|",
    ...cases.map((c) => `| ${c.name} | ${c.outcome} | ${c.seconds} | ${c.detail.split("\n")[0].replace(/\|/g, "/")} |`),
    "",
    "Health while the runs train (answer times of grpc.health.v1 Check on a new connection, every 200 ms; reported, not asserted):",
    "",
    "| run | service | checks | median ms | p99 ms | max ms | over 1 s |",
    "|---|---|---|---|---|---|---|",
    ...Object.entries(health).flatMap(([run, t]) => Object.entries(t).map(([s, h]) => `| ${run} | ${s} | ${h.checks} | ${h.medianMs} | ${h.p99Ms} | ${h.maxMs} | ${h.overOneSecond} |`)),
    "",
  ].join("\n");
  writeFileSync(join(out, "faults-report.md"), md);
  console.log(`\n${md}\nreport: ${join(out, "faults-report.md")} (and .json)`);
  const failed = cases.filter((c) => c.outcome === "fail").length;
  console.log(`${cases.length - failed} of ${cases.length} cases passed`);
  return failed > 0 ? 1 : 0;
}

function round(x: number): number {
  return Number.isFinite(x) ? Math.round(x * 10) / 10 : NaN;
}

main().then(
  (code) => process.exit(code),
  (e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  },
);
