import { before, test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { createLogger, SerialQueue, type RunningServer } from "@rlhf/grpc-kit";
import { DomainError } from "@rlhf/errors";
import { initBackend } from "@rlhf/compute";
import type { GPT2Config } from "@rlhf/model";
import { ModelSlot, ServingFlag, loadInitialWeights, loadWeightsSource, type WeightsTarget } from "./index";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

const lines: Record<string, unknown>[] = [];
const log = createLogger({
  service: "kit-test",
  destination: new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split("\n").filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  }),
});

before(async () => {
  await initBackend({ backend: "cpu" });
});

const CONFIG = { vocabSize: 8, nPositions: 4, nEmbd: 4, nLayer: 1, nHead: 1 } as unknown as GPT2Config;
class Fake {
  disposed = false;
  readonly config = CONFIG;
  dispose(): void {
    this.disposed = true;
  }
}

test("a slot swaps, disposes the old model after the swap, bumps versions and reports SERVING", () => {
  let loaded = 0;
  const slot = new ModelSlot<Fake>(log, { modelId: "m", missing: "no model: load one", onLoaded: () => loaded++ });
  assert.deepEqual(slot.ref, { modelId: "m", version: 0, source: "" });
  assert.throws(() => slot.require(), (e: unknown) => e instanceof DomainError && e.code === "FAILED_PRECONDITION" && e.message === "no model: load one");
  const a = new Fake();
  slot.swap(a, { modelId: "m", version: 3, source: "x" });
  const b = new Fake();
  slot.swap(b, { modelId: "m", version: 0, source: "y" });
  slot.bumpVersion();
  assert.deepEqual([a.disposed, b.disposed, loaded, slot.ref, slot.require() === b], [true, false, 2, { modelId: "m", version: 1, source: "y" }, true]);
  assert.equal(lines.filter((l) => l.msg === "weights loaded").length, 2);
  slot.dispose();
  assert.deepEqual([b.disposed, slot.model, slot.config], [true, undefined, undefined]);
});

test("the serving flag holds what was set until the server is attached", () => {
  const seen: boolean[] = [];
  const server = { setServing: (on: boolean) => seen.push(on) } as unknown as RunningServer;
  const flag = new ServingFlag();
  flag.set(true);
  flag.attach(server);
  flag.set(false);
  assert.deepEqual(seen, [true, false]);
  const idle = new ServingFlag();
  idle.attach(server);
  assert.deepEqual(seen, [true, false, false]);
});

function recorder(calls: string[], modelDir = true): WeightsTarget {
  return {
    loadCheckpoint: async (dir, field) => void calls.push(`checkpoint ${dir} ${field}`),
    loadModelDir: modelDir ? async (dir, field) => void calls.push(`modelDir ${dir} ${field}`) : undefined,
    loadRandom: (config, seed, field) => void calls.push(`random ${config.nLayer} ${seed} ${field}`),
    loadPulled: () => void calls.push("pulled"),
  };
}

test("start-up loads CHECKPOINT_DIR, else MODEL_DIR, else INIT_PRESET, else nothing", async () => {
  const calls: string[] = [];
  await loadInitialWeights({ checkpointDir: "c", initSeed: 0 }, recorder(calls));
  await loadInitialWeights({ modelDir: "m", initSeed: 0 }, recorder(calls));
  await loadInitialWeights({ initPreset: "tiny", initSeed: 7 }, recorder(calls));
  await loadInitialWeights({ initSeed: 7 }, recorder(calls));
  assert.deepEqual(calls, ["checkpoint c CHECKPOINT_DIR", "modelDir m MODEL_DIR", "random 2 7 INIT_PRESET"]);
});

test("a load request's source is dispatched on the queue; bad or unsupported sources are INVALID_ARGUMENT", async () => {
  const calls: string[] = [];
  const queue = new SerialQueue("test", 4);
  const pull = { address: undefined, caller: "test-service", deadlineMs: testDeadlineMs(1000), maxReceiveMessageBytes: 1 << 20, maxTotalBytes: 1 << 20 };
  const opts = (target: WeightsTarget) => ({ target, queue, missing: "set one of a, b", pull, loaded: () => calls.length });
  assert.equal(await loadWeightsSource({ $case: "checkpointDir", checkpointDir: "/c" }, opts(recorder(calls))), 1);
  assert.equal(await loadWeightsSource({ $case: "modelDir", modelDir: "/m" }, opts(recorder(calls))), 2);
  const code = (c: string, msg: RegExp) => (e: unknown) => e instanceof DomainError && e.code === c && msg.test(e.message);
  await assert.rejects(loadWeightsSource(undefined, opts(recorder(calls))), code("INVALID_ARGUMENT", /^source: set one of a, b$/));
  await assert.rejects(loadWeightsSource({ $case: "modelDir", modelDir: "/m" }, opts(recorder(calls, false))), code("INVALID_ARGUMENT", /^source: set one of a, b$/));
  const bigSeed = { $case: "randomInit" as const, randomInit: { config: { vocabSize: 8, nPositions: 4, nEmbd: 4, nLayer: 1, nHead: 1, layerNormEpsilon: 1e-5 }, seed: 2 ** 31 } };
  await assert.rejects(loadWeightsSource(bigSeed, opts(recorder(calls))), code("INVALID_ARGUMENT", /^random_init\.seed: must be in \[0, 2\^31 - 1\], got 2147483648$/));
  await assert.rejects(loadWeightsSource({ $case: "policyWeights", policyWeights: { modelId: "policy", version: 1, source: "" } }, opts(recorder(calls))), code("FAILED_PRECONDITION", /POLICY_ADDR is not configured on this test-service/));
  assert.deepEqual(calls, ["checkpoint /c undefined", "modelDir /m undefined"]);
});
