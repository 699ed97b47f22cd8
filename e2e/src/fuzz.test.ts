// A fuzzer over every method of the five services, real servers on real sockets: empty messages,
// truncated protobuf, a 64-bit integer past 2^53 and seeded random bytes, sent raw to each method
// (streaming ones get the message, then a half-close). No answer may be INTERNAL or UNKNOWN (a
// client's input is never the server's fault), none may hang, and every service still answers
// SERVING afterwards. The model services hold small random models and the calls carry the tests'
// token, so requests get past authentication and "no model is loaded" to their real validation.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import * as grpc from "@grpc/grpc-js";
import { policy as policyPb, rewardModel, referenceModel, pretrainMix, ppoCoordinator } from "@rlhf/proto";
import { createLogger, createClient, checkHealth } from "@rlhf/grpc-kit";
import { modelConfigToProto } from "@rlhf/tensor-transport";
import { BACKEND, TOKEN_FILE } from "./helpers";
import { startPolicy, loadConfig as policyConfig, type PolicyApp } from "@rlhf/policy";
import { startRewardModel, loadConfig as rmConfig, type RewardModelApp } from "@rlhf/reward-model";
import { startReferenceModel, loadConfig as refConfig, type ReferenceModelApp } from "@rlhf/reference-model";
import { startPretrainMix, loadConfig as mixConfig, type PretrainMixApp } from "@rlhf/pretrain-mix";
import { startCoordinator, loadConfig, type CoordinatorApp } from "@rlhf/ppo-coordinator";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

const log = createLogger({ service: "fuzz-test", level: "silent" });
const TINY = { vocabSize: 258, nPositions: 32, nEmbd: 8, nLayer: 1, nHead: 2, layerNormEpsilon: 1e-5 };
let apps: { policy: PolicyApp; rm: RewardModelApp; ref: ReferenceModelApp; mix: PretrainMixApp; coord: CoordinatorApp };

before(async () => {
  process.env.RLHF_BACKEND = BACKEND;
  const root = mkdtempSync(join(tmpdir(), "fuzz-"));
  const policy = await startPolicy(policyConfig({ GRPC_PORT: "0", TOKENIZER: "byte", CHECKPOINT_ROOT: root }), log);
  const rm = await startRewardModel(rmConfig({ GRPC_PORT: "0", POLICY_ADDR: policy.server.address, CHECKPOINT_ROOT: root }), log);
  const ref = await startReferenceModel(refConfig({ GRPC_PORT: "0", POLICY_ADDR: policy.server.address, CHECKPOINT_ROOT: root }), log);
  const mix = await startPretrainMix(mixConfig({ GRPC_PORT: "0", POLICY_ADDR: policy.server.address, TOKENIZER: "byte", DATA_ROOT: root }), log);
  const coord = await startCoordinator(
    loadConfig({ GRPC_PORT: "0", POLICY_ADDR: policy.server.address, REWARD_MODEL_ADDR: rm.server.address, REFERENCE_MODEL_ADDR: ref.server.address, PRETRAIN_MIX_ADDR: mix.server.address, RUNS_DIR: join(root, "runs"), DATA_ROOT: root }),
    log,
  );
  apps = { policy, rm, ref, mix, coord };
  const init = { config: modelConfigToProto(TINY), seed: 1 };
  const pc = createClient(policyPb.PolicyServiceClient, policy.server.address);
  await pc.unary("loadCheckpoint", { source: { $case: "randomInit", randomInit: init }, runId: "" });
  pc.close();
  const rc = createClient(rewardModel.RewardModelServiceClient, rm.server.address);
  await rc.unary("loadCheckpoint", { source: { $case: "randomInit", randomInit: init } });
  rc.close();
  const fc = createClient(referenceModel.ReferenceModelServiceClient, ref.server.address);
  await fc.unary("loadWeights", { source: { $case: "randomInit", randomInit: init } });
  fc.close();
});
after(async () => {
  await apps.coord.stop(500);
  await Promise.all([apps.policy.stop(500), apps.rm.stop(500), apps.ref.stop(500), apps.mix.stop(500)]);
});

/** A full garbage collection (node's gc, exposed for this measurement only). */
function collectGarbage(): void {
  setFlagsFromString("--expose-gc");
  (runInNewContext("gc") as () => void)();
}

/** xorshift32: the same bytes on every run. */
function randomBytes(seed: number, n: number): Buffer {
  let x = seed >>> 0 || 1;
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  return b;
}

function varint(v: bigint): number[] {
  const out: number[] = [];
  while (v >= 0x80n) {
    out.push(Number((v & 0x7fn) | 0x80n));
    v >>= 7n;
  }
  out.push(Number(v));
  return out;
}

/** Hostile payloads, each a whole request message. */
const PAYLOADS: [string, Buffer][] = [
  ["empty", Buffer.alloc(0)],
  ["truncated", Buffer.from([0x0a, 0x64, 0x01])],
  // fields 1..4 as varints of 2^60: past 2^53 wherever a 64-bit integer is declared
  ["huge varints", Buffer.from([0x08, ...varint(1n << 60n), 0x10, ...varint(1n << 60n), 0x18, ...varint(1n << 60n), 0x20, ...varint(1n << 60n)])],
  // field 1 as a length-delimited string of 0xff bytes (not UTF-8), field 2 as a NaN double
  ["bad utf-8 and NaN", Buffer.from([0x0a, 0x04, 0xff, 0xfe, 0xff, 0xfe, 0x11, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f])],
  ...[1, 2, 3, 4, 5, 6].map((s): [string, Buffer] => [`random ${s}`, randomBytes(s * 7919, 8 + s * 11)]),
];

const SERVICES: [string, () => string, grpc.ServiceDefinition][] = [
  ["policy", () => apps.policy.server.address, policyPb.PolicyServiceService as unknown as grpc.ServiceDefinition],
  ["reward-model", () => apps.rm.server.address, rewardModel.RewardModelServiceService as unknown as grpc.ServiceDefinition],
  ["reference-model", () => apps.ref.server.address, referenceModel.ReferenceModelServiceService as unknown as grpc.ServiceDefinition],
  ["pretrain-mix", () => apps.mix.server.address, pretrainMix.PretrainMixServiceService as unknown as grpc.ServiceDefinition],
  ["ppo-coordinator", () => apps.coord.server.address, ppoCoordinator.PpoCoordinatorServiceService as unknown as grpc.ServiceDefinition],
];

const raw = (b: Buffer) => b;
const DEADLINE_MS = testDeadlineMs(60_000);

/** Sends `payload` raw to `def` (with the tests' token, so it gets past authentication) and resolves with the final status code. */
function callRaw(c: grpc.Client, def: grpc.MethodDefinition<unknown, unknown>, payload: Buffer): Promise<number> {
  const opts = { deadline: Date.now() + DEADLINE_MS };
  const md = new grpc.Metadata();
  md.set("authorization", `Bearer ${readFileSync(TOKEN_FILE, "utf8").trim()}`);
  return new Promise<number>((resolve) => {
    const done = (e: grpc.ServiceError | null) => resolve(e ? e.code : grpc.status.OK);
    if (!def.requestStream && !def.responseStream) {
      c.makeUnaryRequest(def.path, raw, raw, payload, md, opts, done);
    } else if (def.requestStream && !def.responseStream) {
      const w = c.makeClientStreamRequest(def.path, raw, raw, md, opts, done);
      w.write(payload);
      w.end();
    } else {
      const s = def.requestStream ? c.makeBidiStreamRequest(def.path, raw, raw, md, opts) : c.makeServerStreamRequest(def.path, raw, raw, payload, md, opts);
      if (def.requestStream) {
        (s as grpc.ClientDuplexStream<Buffer, Buffer>).write(payload);
        (s as grpc.ClientDuplexStream<Buffer, Buffer>).end();
      }
      s.on("data", () => undefined);
      s.on("status", (st: grpc.StatusObject) => resolve(st.code));
      s.on("error", () => undefined); // the status event carries the code
    }
  });
}

test("every method of every service answers hostile bytes with a client error, never INTERNAL, UNKNOWN or a hang; memory stays flat", { timeout: testDeadlineMs(900_000) }, async (t) => {
  const bad = new Set<string>();
  const codes = new Map<number, number>();
  let calls = 0;
  const round = async () => {
    for (const [name, address, def] of SERVICES) {
      const c = new grpc.Client(address(), grpc.credentials.createInsecure());
      for (const [method, m] of Object.entries(def)) {
        for (const [what, payload] of PAYLOADS) {
          const code = await callRaw(c, m as grpc.MethodDefinition<unknown, unknown>, payload);
          calls++;
          codes.set(code, (codes.get(code) ?? 0) + 1);
          if (code === grpc.status.INTERNAL || code === grpc.status.UNKNOWN || code === grpc.status.DEADLINE_EXCEEDED) {
            bad.add(`${name}.${method} <- ${what}: ${grpc.status[code]}`);
          }
        }
      }
      c.close();
    }
  };
  // The five services run in this process: its resident memory is theirs. The first round warms
  // up (compiled code, caches); three more must not grow it by more than a little.
  await round();
  const perRound = calls;
  collectGarbage();
  const rssBefore = process.memoryUsage().rss;
  for (let i = 0; i < 3; i++) await round();
  collectGarbage();
  const grownMb = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
  t.diagnostic(`${calls} calls (${perRound} per round); resident memory ${grownMb >= 0 ? "+" : ""}${grownMb.toFixed(1)} MiB over the last ${calls - perRound}`);
  t.diagnostic([...codes].map(([c, n]) => `${grpc.status[c]} ${n}`).join(", "));
  assert.deepEqual([...bad], [], `${bad.size} failing cases over ${calls} calls`);
  assert.equal(codes.get(grpc.status.UNAUTHENTICATED) ?? 0, 0, "every call got past authentication");
  assert.ok((codes.get(grpc.status.INVALID_ARGUMENT) ?? 0) > calls / 4, "most calls reach validation");
  assert.ok(perRound >= 250, `${perRound} calls per round`);
  assert.ok(grownMb < 64, `resident memory grew by ${grownMb.toFixed(1)} MiB over ${calls - perRound} hostile calls`);
  for (const [name, address] of SERVICES) assert.equal(await checkHealth(address(), "", testDeadlineMs(10_000)), "SERVING", `${name} still serving`);
  // Without the token nothing gets that far.
  const c = new grpc.Client(apps.policy.server.address, grpc.credentials.createInsecure());
  const code = await new Promise<number>((resolve) => c.makeUnaryRequest("/rlhf.policy.v1.PolicyService/GetInfo", (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), new grpc.Metadata(), { deadline: Date.now() + testDeadlineMs(10_000) }, (e) => resolve(e ? e.code : 0)));
  c.close();
  assert.equal(code, grpc.status.UNAUTHENTICATED);
});
