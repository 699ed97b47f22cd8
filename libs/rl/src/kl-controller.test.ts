import { test } from "node:test";
import assert from "node:assert/strict";
import {
  AdaptiveKlController,
  FixedKlController,
  createKlController,
  klControllerFromState,
  type KlController,
} from "./kl-controller";
import { assertClose, assertInvalid } from "./testing/rl-asserts";

test("adaptive controller: a worked sequence of updates (Ziegler et al.)", () => {
  const c = new AdaptiveKlController({ initBeta: 0.1, targetKl: 6, horizon: 10000 });
  assert.equal(c.beta, 0.1);
  // KL 9 nats/seq over 100 sequences: e = 9/6 - 1 = 0.5 -> clipped 0.2; beta = 0.1*(1 + 0.2*100/10000) = 0.1002
  c.update(9, 100);
  assertClose(c.beta, 0.1002, 1e-15);
  // KL 3: e = -0.5 -> clipped -0.2; beta = 0.1002*(1 - 0.002) = 0.0999996
  c.update(3, 100);
  assertClose(c.beta, 0.0999996, 1e-15);
  // KL 6.6 over 200: e = 0.1 (inside the clip); beta = 0.0999996*(1 + 0.1*0.02) = 0.1001995992
  c.update(6.6, 200);
  assertClose(c.beta, 0.1001995992, 1e-15);
  // On target: e = 0, beta unchanged; no sequences: unchanged.
  c.update(6, 50);
  assertClose(c.beta, 0.1001995992, 1e-15);
  const before = c.beta;
  c.update(100, 0);
  assert.equal(c.beta, before);
});

test("the proportional error is clipped to [-0.2, 0.2]", () => {
  const make = () => new AdaptiveKlController({ initBeta: 0.1, targetKl: 6, horizon: 1000 });
  const at = (kl: number) => {
    const c = make();
    c.update(kl, 100);
    return c.beta;
  };
  // Above: e = 1 and e = 166665.7 both act as 0.2 -> 0.1*(1 + 0.2*0.1) = 0.102
  assert.equal(at(12), at(1e6));
  assertClose(at(12), 0.102, 1e-15);
  // Below: e = -1 (KL 0) and e = -9.3 (a negative k1 estimate) both act as -0.2 -> 0.098
  assert.equal(at(0), at(-50));
  assertClose(at(0), 0.098, 1e-15);
  // Inside the clip the step is proportional: e = 0.1 -> 0.1*(1 + 0.1*0.1) = 0.101
  assertClose(at(6.6), 0.101, 1e-15);
  assert.ok(at(6.6) < at(12) && at(5.4) > at(0));
});

test("fixed controller keeps beta but still validates its arguments", () => {
  const c = new FixedKlController(0.02);
  c.update(50, 64);
  c.update(-3, 64);
  assert.equal(c.beta, 0.02);
  assert.deepEqual(c.state(), { kind: "fixed", beta: 0.02 });
  assertInvalid(() => c.update(NaN, 64), "observedKl");
  assertInvalid(() => c.update(1, -1), "nSteps");
});

test("state round-trips through JSON exactly: a restored controller continues bit for bit", () => {
  const kls = [4.1, 7.77, 0.3, 3.3333, 12.5, 2.9, 3.31, -0.4];
  const original = new AdaptiveKlController({ initBeta: 0.037, targetKl: 3.3, horizon: 777 });
  for (const kl of kls.slice(0, 4)) original.update(kl, 37);
  const saved = JSON.stringify(original.state());
  const restored = klControllerFromState(JSON.parse(saved));
  assert.ok(restored instanceof AdaptiveKlController);
  assert.equal(restored.beta, original.beta);
  assert.deepEqual(restored.state(), original.state());
  for (const kl of kls.slice(4)) {
    original.update(kl, 37);
    restored.update(kl, 37);
    assert.equal(restored.beta, original.beta);
  }
  assert.notEqual(original.beta, 0.037, "the updates moved beta");

  const fixed: KlController = klControllerFromState(JSON.parse(JSON.stringify(new FixedKlController(0.05).state())));
  assert.ok(fixed instanceof FixedKlController);
  assert.equal(fixed.beta, 0.05);
  assert.equal(AdaptiveKlController.fromState(original.state()).beta, original.beta);
});

test("createKlController builds either kind from a run config entry", () => {
  const a = createKlController({ kind: "adaptive", initBeta: 0.15, targetKl: 6, horizon: 10000 });
  assert.deepEqual(a.state(), { kind: "adaptive", beta: 0.15, targetKl: 6, horizon: 10000 });
  assert.deepEqual(createKlController({ kind: "fixed", beta: 0.02 }).state(), { kind: "fixed", beta: 0.02 });
});

test("bad configurations, updates and states throw InvalidArgumentError naming the field", () => {
  assertInvalid(() => new FixedKlController(-0.1), "beta");
  assertInvalid(() => new AdaptiveKlController({ initBeta: 0, targetKl: 6, horizon: 10000 }), "initBeta");
  assertInvalid(() => new AdaptiveKlController({ initBeta: 0.1, targetKl: 0, horizon: 10000 }), "targetKl");
  assertInvalid(() => new AdaptiveKlController({ initBeta: 0.1, targetKl: 6, horizon: -5 }), "horizon");
  const c = new AdaptiveKlController({ initBeta: 0.1, targetKl: 6, horizon: 100 });
  assertInvalid(() => c.update(Infinity, 10), "observedKl");
  assertInvalid(() => c.update(1, 1.5), "nSteps");
  assertInvalid(() => c.update(1, 500), "nSteps");
  assert.equal(c.beta, 0.1, "a rejected update changes nothing");
  assertInvalid(() => klControllerFromState(null), "state");
  assertInvalid(() => klControllerFromState({ kind: "pid", beta: 1 }), "state.kind");
  assertInvalid(() => klControllerFromState({ kind: "adaptive", beta: 0.1, horizon: 10 }), "state.targetKl");
  assertInvalid(() => klControllerFromState({ kind: "adaptive", beta: -0.1, targetKl: 6, horizon: 10 }), "state.beta");
  assertInvalid(() => klControllerFromState({ kind: "fixed", beta: "0.1" }), "state.beta");
  assertInvalid(() => FixedKlController.fromState({ kind: "adaptive", beta: 0.1, targetKl: 6, horizon: 10 }), "state.kind");
  assertInvalid(() => createKlController({ kind: "bogus" } as never), "kind");
});
