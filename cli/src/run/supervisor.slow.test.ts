import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { appendFileSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { checkHealth } from "@rlhf/grpc-kit";
import { ChildFailedError, Supervisor, readableLogLine, type ChildSpec } from "./supervisor";
import { cliEntryPoint, freePorts, serviceSpecs } from "./session";
import { exitWithParent } from "./parent-watch";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * A stand-in service: a real gRPC server with health (from the service kit) on PORT, JSON logs on
 * stdout. MODE: "not-serving" (answers NOT_SERVING, like a model service without a model),
 * "serving-later" (SERVING after 300 ms), "die" (exits 3 at once after a line on stderr),
 * "stubborn" (ignores SIGTERM), "silent" (never listens).
 */
const STAND_IN = `
const kit = require(${JSON.stringify(require.resolve("@rlhf/grpc-kit"))});
const mode = process.env.MODE;
if (mode === "die") { console.error("boom: cannot load the model"); process.exit(3); }
if (mode === "silent") { setInterval(() => {}, 1000); }
else (async () => {
  const log = kit.createLogger({ service: "stand-in" });
  const s = await kit.startServer({ services: [], log, port: Number(process.env.PORT) });
  if (mode === "serving-later") setTimeout(() => s.setServing(true), 300);
  process.on("SIGTERM", async () => {
    if (mode === "stubborn") return console.log("ignoring SIGTERM");
    console.log("got SIGTERM");
    await s.shutdown(500);
    process.exit(0);
  });
})();
`;

function standIn(name: string, port: number, mode: string, ready: ChildSpec["ready"] = "answer"): ChildSpec {
  return { name, args: ["-e", STAND_IN], port, env: { MODE: mode, PORT: String(port), LOG_LEVEL: "info" }, ready };
}

const tmp = () => mkdtempSync(join(tmpdir(), "rlhf-supervisor-"));

test("children on distinct free ports: health waited for (an answer, or SERVING), logs appended to files, SIGTERM stops them", async () => {
  const dir = tmp();
  appendFileSync(join(dir, "a.log"), "a line from an earlier session\n");
  const [pa, pb] = await freePorts(2);
  assert.notEqual(pa, pb);
  const sup = new Supervisor({ logDir: dir, graceMs: 5000 });
  try {
    sup.start(standIn("a", pa, "not-serving", "answer"));
    sup.start(standIn("b", pb, "serving-later", "serving"));
    assert.equal(sup.address("b"), `127.0.0.1:${pb}`);
    await sup.waitReady(undefined, { timeoutMs: testDeadlineMs(30_000) });
    assert.equal(await checkHealth(sup.address("a")), "NOT_SERVING");
    assert.equal(await checkHealth(sup.address("b")), "SERVING");
    // this session's lines only: not the one from before
    assert.match(sup.logTail("a"), /^info listening \{"address":"127\.0\.0\.1:\d+","services":\[\],"reflection":false,"authentication":"off","tls":"off"\}$/m);
    assert.doesNotMatch(sup.logTail("a"), /earlier session/);
  } finally {
    const exits = await sup.stop();
    assert.deepEqual(exits, { a: { code: 0, signal: null }, b: { code: 0, signal: null } });
  }
  const logA = readFileSync(join(dir, "a.log"), "utf8");
  assert.match(logA, /^a line from an earlier session\n/, "appended, not overwritten");
  assert.match(logA, /"service":"stand-in"/);
  assert.match(logA, /got SIGTERM/);
  assert.match(readFileSync(join(dir, "b.log"), "utf8"), /got SIGTERM/);
  // stopping twice is harmless
  await sup.stop();
});

test("a child that dies before it is ready fails the wait with the end of its log", async () => {
  const dir = tmp();
  const [pa, pb] = await freePorts(2);
  const sup = new Supervisor({ logDir: dir });
  try {
    sup.start(standIn("good", pa, "not-serving"));
    sup.start(standIn("bad", pb, "die"));
    const err = await sup.waitReady(undefined, { timeoutMs: testDeadlineMs(30_000) }).then(
      () => assert.fail("waitReady should fail"),
      (e: unknown) => e,
    );
    assert.ok(err instanceof ChildFailedError);
    assert.equal(err.child, "bad");
    assert.equal(err.reason, "exited with code 3 before it was ready");
    assert.equal(err.tail, "boom: cannot load the model");
    assert.equal(err.message, `bad exited with code 3 before it was ready (log: ${join(dir, "bad.log")}); its last lines:\n  boom: cannot load the model`);
    // and `failed` reports it too
    const failed = await sup.failed;
    assert.equal(failed.child, "bad");
    assert.match(failed.message, /bad exited with code 3 unexpectedly/);
  } finally {
    await sup.stop();
  }
});

test("a child that dies while the others work resolves `failed`; stopping the rest does not", async () => {
  const dir = tmp();
  const [pa, pb] = await freePorts(2);
  const sup = new Supervisor({ logDir: dir });
  try {
    sup.start(standIn("a", pa, "not-serving"));
    sup.start(standIn("b", pb, "not-serving"));
    await sup.waitReady(undefined, { timeoutMs: testDeadlineMs(30_000) });
    process.kill(sup.pid("b")!, "SIGKILL");
    const failed = await sup.failed;
    assert.equal(failed.child, "b");
    assert.match(failed.message, /^b was killed by SIGKILL unexpectedly \(log: .*b\.log\); its last lines:\n {2}info listening \{"address"/);
    assert.deepEqual(sup.exitOf("b"), { code: null, signal: "SIGKILL" });
    assert.equal(sup.exitOf("a"), undefined);
  } finally {
    const exits = await sup.stop();
    assert.deepEqual(exits.a, { code: 0, signal: null });
    assert.deepEqual(sup.killedAfterGrace, [], "b was killed, but not by stop()");
  }
});

test("a child that ignores SIGTERM is SIGKILLed after the grace period; one that never listens times out", async () => {
  const dir = tmp();
  const [pa, pb] = await freePorts(2);
  const sup = new Supervisor({ logDir: dir, graceMs: 300 });
  try {
    sup.start(standIn("stubborn", pa, "stubborn"));
    sup.start(standIn("silent", pb, "silent"));
    await sup.waitReady(["stubborn"], { timeoutMs: testDeadlineMs(30_000) });
    await assert.rejects(sup.waitReady(["silent"], { timeoutMs: 1000 }), (e: unknown) => { // deadline under test
      assert.ok(e instanceof ChildFailedError);
      assert.match(e.message, new RegExp(`^silent did not answer health on 127\\.0\\.0\\.1:${pb} within 1 s \\(.*\\) \\(log: .*silent\\.log\\); it wrote nothing$`));
      return true;
    });
    await assert.rejects(sup.waitReady(["stubborn"], { timeoutMs: 1000, ready: "serving" }), /stubborn was not SERVING on .* after 1 s \(last: NOT_SERVING\)/); // deadline under test
  } finally {
    const t0 = Date.now();
    const exits = await sup.stop();
    assert.deepEqual(exits.stubborn, { code: null, signal: "SIGKILL" });
    assert.deepEqual(sup.killedAfterGrace, ["stubborn"]);
    assert.ok(Date.now() - t0 >= 250, "waited for the grace period first");
  }
  assert.match(readFileSync(join(dir, "stubborn.log"), "utf8"), /ignoring SIGTERM/);
});

test("an aborted wait rejects with the abort reason", async () => {
  const dir = tmp();
  const [p] = await freePorts(1);
  const sup = new Supervisor({ logDir: dir });
  try {
    sup.start(standIn("silent", p, "silent"));
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error("Ctrl-C")), 300);
    await assert.rejects(sup.waitReady(undefined, { timeoutMs: testDeadlineMs(30_000), signal: ac.signal }), /Ctrl-C/);
  } finally {
    await sup.stop();
  }
});

test("real `rlhf serve` children wired by serviceSpecs: reference-model answers NOT_SERVING without a model, pretrain-mix becomes SERVING", async () => {
  const dir = tmp();
  const [coord, policy, rm, ref, mix] = await freePorts(5);
  const specs = serviceSpecs({
    ports: { "ppo-coordinator": coord, policy, "reward-model": rm, "reference-model": ref, "pretrain-mix": mix },
    runsDir: dir,
    tokenizer: "byte",
    backend: "cpu",
  });
  assert.deepEqual(specs["pretrain-mix"].args, [cliEntryPoint(), "serve", "pretrain-mix", "--port", String(mix)]);
  const sup = new Supervisor({ logDir: dir });
  try {
    sup.start(specs["reference-model"]);
    sup.start(specs["pretrain-mix"]);
    await sup.waitReady(undefined, { timeoutMs: testDeadlineMs(120_000) });
    assert.equal(await checkHealth(sup.address("reference-model")), "NOT_SERVING");
    assert.equal(await checkHealth(sup.address("pretrain-mix")), "SERVING");
  } finally {
    const exits = await sup.stop();
    assert.deepEqual(exits, { "reference-model": { code: 0, signal: null }, "pretrain-mix": { code: 0, signal: null } });
  }
  const mixLog = readFileSync(join(dir, "pretrain-mix.log"), "utf8");
  assert.match(mixLog, /"service":"pretrain-mix"/);
  assert.match(mixLog, /"tokenizer":"byte"/);
  assert.match(mixLog, /compute backend cpu/);
  assert.match(readFileSync(join(dir, "reference-model.log"), "utf8"), /"service":"reference-model"/);
});

/** Whether a process is still there. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test("children die with a CLI that is SIGKILLed (their stdin pipe closes); without the watch they would outlive it", { timeout: testDeadlineMs(120_000) }, async () => {
  const dir = tmp();
  const tsx = require.resolve("tsx/cjs");
  // A child as `rlhf serve` sets it up: the watch from parent-watch.ts, graceful stop on SIGTERM.
  const child = `
const on = require(${JSON.stringify(join(__dirname, "parent-watch.ts"))}).exitWithParent();
console.log("watch " + (on ? "on" : "off"));
process.on("SIGTERM", () => { console.log("SIGTERM: stopping"); process.exit(0); });
setInterval(() => {}, 1000);`;
  // The CLI: a supervisor with two children, one with the watch (the default) and one without.
  const parent = `
const { Supervisor } = require(${JSON.stringify(join(__dirname, "supervisor.ts"))});
const sup = new Supervisor({ logDir: ${JSON.stringify(dir)} });
const args = ["-r", ${JSON.stringify(tsx)}, "-e", ${JSON.stringify(child)}];
sup.start({ name: "watched", args, port: 1 });
sup.start({ name: "unwatched", args, port: 2, env: { RLHF_EXIT_WITH_PARENT: "0" } });
console.log(JSON.stringify({ watched: sup.pid("watched"), unwatched: sup.pid("unwatched") }));
setInterval(() => {}, 1000);`;
  const cli = spawn(process.execPath, ["-r", tsx, "-e", parent], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  const pids = await new Promise<{ watched: number; unwatched: number }>((resolve, reject) => {
    cli.stdout.on("data", (d) => {
      out += d;
      if (out.includes("\n")) resolve(JSON.parse(out.split("\n")[0]));
    });
    cli.once("exit", (code) => reject(new Error(`the parent exited (${code}) before starting its children: ${out}`)));
  });
  const log = (name: string) => readFileSync(join(dir, `${name}.log`), "utf8");
  try {
    // Both children are up (each wrote its first line) before the parent dies.
    for (let i = 0; i < testDeadlineMs(60_000) / 100 && !(log("watched").includes("watch on") && log("unwatched").includes("watch off")); i++) await sleep(100);
    assert.match(log("watched"), /watch on/);
    cli.kill("SIGKILL");
    for (let i = 0; i < testDeadlineMs(60_000) / 100 && alive(pids.watched); i++) await sleep(100);
    assert.equal(alive(pids.watched), false, "the watched child stopped when its parent was killed");
    assert.match(log("watched"), /SIGTERM: stopping/, "it stopped gracefully (as on SIGTERM), not by a kill");
    assert.equal(alive(pids.unwatched), true, "without the watch, a child outlives a SIGKILLed parent (why the watch exists)");
  } finally {
    for (const pid of [pids.watched, pids.unwatched]) if (alive(pid)) process.kill(pid, "SIGKILL");
  }
});

test("RLHF_EXIT_WITH_PARENT takes 0 or 1", () => {
  assert.equal(exitWithParent({}), false);
  assert.equal(exitWithParent({ RLHF_EXIT_WITH_PARENT: "0" }), false);
  assert.throws(() => exitWithParent({ RLHF_EXIT_WITH_PARENT: "yes" }), /RLHF_EXIT_WITH_PARENT must be 0 or 1, got "yes"/);
});

test("JSON log lines read as `<level> <msg> {fields}`; other lines stay as they are", () => {
  assert.equal(readableLogLine('{"level":50,"time":"t","service":"policy","version":"0.1.0","pid":1,"err":{"message":"boom"},"msg":"Generate failed"}'), 'error Generate failed {"err":{"message":"boom"}}');
  assert.equal(readableLogLine('{"level":30,"time":"t","msg":"listening"}'), "info listening");
  assert.equal(readableLogLine("policy: failed to start: no model"), "policy: failed to start: no model");
  assert.equal(readableLogLine('{"not":"a log line"}'), '{"not":"a log line"}');
  assert.equal(readableLogLine("{oops"), "{oops");
});
