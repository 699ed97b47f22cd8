// `rlhf serve reference-model` as a real process: serves, answers, refuses bad input, logs JSON,
// drains an in-flight call on SIGTERM and exits 0; misconfiguration stops it with one clear line.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as grpc from "@grpc/grpc-js";
import { referenceModel } from "@rlhf/proto";
import { createClient, waitForServing, checkHealth } from "@rlhf/grpc-kit";
import { RLHF, freePort, start, exitWithin } from "./helpers";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

test("serve, query, drain on SIGTERM, exit 0", async () => {
  const port = await freePort();
  // Default backend order (torch where built, else wasm): the pure-JS cpu backend needs minutes for the call below.
  const svc = start([RLHF, "serve", "reference-model", "--port", String(port), "--init", "small", "--seed", "3"]);
  const address = `127.0.0.1:${port}`;
  await waitForServing(address, testDeadlineMs(60_000));
  const client = createClient(referenceModel.ReferenceModelServiceClient, address, { deadlineMs: testDeadlineMs(60_000) });
  const info = await client.unary("getInfo", {});
  assert.equal(info.config?.vocabSize, 50257);
  assert.equal(info.weights?.source, "random:3");

  await assert.rejects(
    client.unary("logProbs", { batch: { tokens: [1, 60000], lengths: [2], promptLengths: [] }, temperature: 1 }),
    (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && /batch\.tokens\[1\]: id 60000 is outside the vocabulary \[0, 50257\)/.test(e.details),
  );
  // A long call (seconds on wasm, less on torch) in flight when SIGTERM arrives still completes.
  const tokens = Array.from({ length: 8 * 200 }, (_, i) => (i * 7919) % 50257);
  const inflight = client.unary("logProbs", { batch: { tokens, lengths: Array(8).fill(200), promptLengths: [] }, temperature: 1 });
  await new Promise((r) => setTimeout(r, 200));
  svc.child.kill("SIGTERM");
  const res = await inflight;
  assert.equal(res.logprobs.length, 8 * 199);
  assert.ok(res.logprobs.every((x) => Number.isFinite(x) && x < 0));
  assert.equal(await exitWithin(svc, testDeadlineMs(20_000)), 0, svc.out());
  await assert.rejects(checkHealth(address, "", 500));
  client.close();

  const lines = svc
    .out()
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(lines.length > 3);
  assert.ok(lines.every((l) => l.service === "reference-model" && typeof l.version === "string"));
  assert.ok(lines.some((l) => l.msg === "listening" && l.address === address));
  assert.ok(lines.some((l) => l.msg === "rpc failed" && l.code === "INVALID_ARGUMENT"));
  assert.ok(lines.some((l) => l.msg === "signal received"));
  assert.ok(lines.some((l) => l.msg === "stopped"));
  assert.ok(!svc.out().includes("60000,"), "logs never carry token arrays");
});

test("clear errors for unknown or unbuilt services, bad flags and bad environment", async () => {
  const cases: [string[], Record<string, string>, number, RegExp][] = [
    [["serve", "bogus"], {}, 2, /unknown service "bogus"; the services are: ppo-coordinator, policy, reward-model, reference-model, pretrain-mix/],
    [["serve", "reference-model", "--prot", "1"], {}, 2, /unknown option --prot/],
    [["serve", "reference-model", "--port", "abc"], {}, 2, /reference-model: configuration error: GRPC_PORT must be an integer, got "abc"/],
    [["serve", "reference-model"], { GRPC_PORT: "0", MAX_BATCH_TOKENS: "0" }, 2, /MAX_BATCH_TOKENS must be in \[1, 100000000\], got 0/],
    [["serve", "reference-model", "--port", "0", "--checkpoint", "/nonexistent/ckpt"], { RLHF_BACKEND: "cpu" }, 1, /failed to start: .*\/nonexistent\/ckpt/],
    [["frobnicate"], {}, 2, /unknown command "frobnicate"/],
  ];
  for (const [args, env, code, re] of cases) {
    const p = start([RLHF, ...args], env);
    assert.equal(await exitWithin(p, testDeadlineMs(30_000)), code, `${args.join(" ")}: ${p.out()}`);
    assert.match(p.out(), re, args.join(" "));
    // Besides JSON log lines, the failure is a plain line first (usage text may follow), no stack.
    const plain = p.out().trim().split("\n").filter((l) => !l.startsWith("{"));
    assert.match(plain[0], re, `the first plain line says what is wrong: ${p.out()}`);
    assert.ok(!/^\s+at /m.test(p.out()), `no stack trace: ${p.out()}`);
  }
});
