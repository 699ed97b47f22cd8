import { test } from "node:test";
import assert from "node:assert/strict";
import {
  SimulatedLabeler,
  calibrateNoiseStd,
  calibrateOnGroups,
  createLabelers,
  expectedAgreement,
  groupScoreDiffs,
  measuredAgreement as panelAgreement,
  normalCdf,
  pairwiseAgreement,
  simulatedScoreDiffs,
  winRate,
} from "./labelers";
import { simulateResponses } from "./responses";
import { Rng } from "./rng";
import { goldRanking, goldScore } from "./scoring";
import { buildInstructionDatasets } from "./tasks";

const ds = buildInstructionDatasets({ sizes: { sft: 0, rm: 1400, ppo: 0, eval: 0 } });
const tasks = ds.rm;

test("normalCdf matches tabulated values", () => {
  assert.ok(Math.abs(normalCdf(0) - 0.5) < 1e-7);
  assert.ok(Math.abs(normalCdf(1) - 0.8413447461) < 2e-7);
  assert.ok(Math.abs(normalCdf(-1.96) - 0.0249978951) < 2e-7);
  assert.ok(Math.abs(normalCdf(3) - 0.9986501020) < 2e-7);
});

test("expectedAgreement matches a direct simulation of two noisy labelers", () => {
  const rng = new Rng(11);
  for (const [d, sigma] of [
    [0.5, 0.7],
    [0, 0.3],
    [2, 0.5],
  ]) {
    let agree = 0;
    const n = 100000;
    for (let i = 0; i < n; i++) {
      const l1 = d + sigma * (rng.normal() - rng.normal()) > 0;
      const l2 = d + sigma * (rng.normal() - rng.normal()) > 0;
      if (l1 === l2) agree++;
    }
    assert.ok(Math.abs(agree / n - expectedAgreement([d], sigma)) < 0.006, `d=${d} sigma=${sigma}: ${agree / n} vs ${expectedAgreement([d], sigma)}`);
  }
});

/** Two fresh labelers with noise calibrated for `target`, measured on 20000 new random response pairs. */
function measuredAgreement(target: number): number {
  const [a, b] = createLabelers(tasks, { count: 2, agreement: target, seed: 5 });
  const rng = new Rng(424242, "fresh pairs");
  let agree = 0;
  // 5,000 pairs: a standard error of at most 0.007, so the 3-point bound is over 4 of them.
  const n = 5000;
  for (let i = 0; i < n; i++) {
    const t = rng.pick(tasks);
    const [x, y] = simulateResponses(t, 2, rng);
    if (a.compare(t, x, y) === b.compare(t, x, y)) agree++;
  }
  return agree / n;
}

test("two simulated labelers agree on random response pairs within 3 points of the configured rate (0.73, 0.6, 0.9)", (t) => {
  for (const target of [0.73, 0.6, 0.9]) {
    const m = measuredAgreement(target);
    t.diagnostic(`target agreement ${target}: measured ${m.toFixed(4)} on 5000 pairs`);
    assert.ok(Math.abs(m - target) <= 0.03, `target ${target}, measured ${m}`);
  }
});

test("rankings of K = 4 by two labelers agree pairwise at about the configured rate", (tc) => {
  const [a, b] = createLabelers(tasks, { count: 2, seed: 9 });
  let agree = 0;
  let pairs = 0;
  tasks.forEach((t, i) => {
    const responses = simulateResponses(t, 4, new Rng(77, i));
    const r = pairwiseAgreement(a.rank(t, responses), b.rank(t, responses));
    agree += r.agree;
    pairs += r.pairs;
  });
  tc.diagnostic(`K=4 rankings: pairwise agreement ${(agree / pairs).toFixed(4)} over ${pairs} pairs`);
  assert.ok(Math.abs(agree / pairs - 0.73) <= 0.03, `${agree / pairs}`);
});

test("calibration: the σ found gives the target agreement; impossible targets are refused", () => {
  const diffs = simulatedScoreDiffs(tasks, { pairs: 2000, seed: 1 });
  const sigma = calibrateNoiseStd(diffs, 0.73);
  assert.ok(Math.abs(expectedAgreement(diffs, sigma) - 0.73) < 1e-6);
  assert.ok(calibrateNoiseStd(diffs, 0.8) < sigma, "more agreement needs less noise");
  assert.throws(() => calibrateNoiseStd(diffs, 0.5), /agreement/);
  assert.throws(() => calibrateNoiseStd(diffs, 1), /agreement/);
  assert.throws(() => calibrateNoiseStd([0, 0, 1], 0.9), /unreachable/);
});

test("a labeler ties identical responses, is consistent whatever the order, and differs from its peers", () => {
  const [a, b] = createLabelers(tasks, { count: 2 });
  const t = tasks[3];
  const rs = simulateResponses(t, 4, new Rng(1));
  const withDup = [rs[0], rs[1], ` ${rs[0].trim()}  `];
  const r = a.rank(t, withDup);
  assert.equal(r[0], r[2], "identical up to whitespace: a tie");
  assert.equal(a.compare(t, rs[0], `${rs[0]} `), 0);
  const fwd = a.rank(t, rs);
  const rev = a.rank(t, [...rs].reverse());
  assert.deepEqual([...rev].reverse(), fwd);
  assert.deepEqual(new SimulatedLabeler({ id: 0, noiseStd: a.noiseStd }).rank(t, rs), fwd, "same id and seed: same judgements");
  let differ = 0;
  for (const task of tasks.slice(0, 200)) {
    const resp = simulateResponses(task, 4, new Rng(2, task.id));
    if (a.rank(task, resp).join() !== b.rank(task, resp).join()) differ++;
  }
  assert.ok(differ > 50, `${differ} of 200 rankings differ`);
});

test("a noiseless labeler ranks like the gold scorer", () => {
  const exact = new SimulatedLabeler({ id: 0, noiseStd: 0 });
  for (const t of tasks.slice(0, 100)) {
    const rs = simulateResponses(t, 5, new Rng(3, t.id));
    assert.deepEqual(exact.rank(t, rs), goldRanking(t, rs));
  }
});

test("win rate: gold answers beat degraded ones; a model against itself is 0.5", () => {
  const labelers = createLabelers(tasks, { count: 3 });
  const sub = tasks.slice(0, 400);
  const gold = sub.map((t) => t.completion);
  const bad = sub.map((t, i) => simulateResponses(t, 1, new Rng(4, i), { goldRate: 0 })[0]);
  const w = winRate(sub, gold, bad, labelers);
  assert.equal(w.wins + w.losses + w.ties, 400);
  assert.ok(w.winRate > 0.8, `${w.winRate}`);
  const self = winRate(sub, gold, gold, labelers);
  assert.deepEqual(self, { wins: 0, losses: 0, ties: 400, winRate: 0.5 });
  assert.throws(() => winRate(sub, gold, [], labelers), /responsesB/);
});

test("groupScoreDiffs: every pair of different responses within a group, identical ones left out", () => {
  const t = tasks[5];
  const rs = simulateResponses(t, 3, new Rng(4));
  const diffs = groupScoreDiffs([{ task: t, responses: [rs[0], rs[1], ` ${rs[0]} `, rs[2]] }]);
  const g = rs.map((r) => goldScore(t, r));
  assert.deepEqual(diffs, [g[0] - g[1], g[0] - g[2], g[1] - g[2]]);
  assert.deepEqual(groupScoreDiffs([{ task: t, responses: [rs[0], rs[0]] }]), []);
});

test("a panel calibrated on the groups it ranks agrees on them at the target; one calibrated on random simulated pairs agrees less on close responses", (tc) => {
  // Close responses, like a small model's K samples: the middle 4 of 8 sorted by gold score.
  const groups = tasks.slice(0, 600).map((task, i) => {
    const rs = simulateResponses(task, 8, new Rng(21, i)).sort((a, b) => goldScore(task, a) - goldScore(task, b));
    return { task, responses: rs.slice(2, 6) };
  });
  const simulated = createLabelers(tasks, { count: 4, seed: 5 });
  const onGroups = createLabelers(tasks, { count: 4, seed: 5, calibrationDiffs: groupScoreDiffs(groups) });
  const a = panelAgreement(groups, simulated);
  const b = panelAgreement(groups, onGroups);
  tc.diagnostic(`close groups: calibrated on simulated pairs ${(a.agree / a.pairs).toFixed(4)}, on the groups ${(b.agree / b.pairs).toFixed(4)} over ${b.pairs} pairs`);
  assert.equal(a.pairs, b.pairs);
  assert.ok(Math.abs(b.agree / b.pairs - 0.73) <= 0.03, `${b.agree / b.pairs}`);
  assert.ok(a.agree / a.pairs < 0.7, `${a.agree / a.pairs}`);
  assert.ok(onGroups[0].noiseStd < simulated[0].noiseStd);
});

test("measured agreement: a panel of one is compared with a second labeler of its σ; noiseless labelers always agree", () => {
  const groups = tasks.slice(0, 300).map((task, i) => ({ task, responses: simulateResponses(task, 4, new Rng(31, i)) }));
  const [one] = createLabelers(tasks, { count: 1, seed: 2 });
  const m = panelAgreement(groups, [one]);
  assert.ok(m.pairs > 1000 && Math.abs(m.agree / m.pairs - 0.73) <= 0.04, `${m.agree}/${m.pairs}`);
  const exact = panelAgreement(groups, createLabelers(tasks, { count: 3, noiseStd: 0 }));
  assert.equal(exact.agree, exact.pairs);
  assert.throws(() => panelAgreement(groups, []), /labelers/);
});

test("calibrateOnGroups: all pairs when the target is reachable; the pairs with different scores when equal ones cap it; none without a preference", () => {
  const simulated = tasks.slice(0, 300).map((task, i) => ({ task, responses: simulateResponses(task, 4, new Rng(41, i)) }));
  const all = calibrateOnGroups(simulated, 0.73);
  assert.ok(all);
  assert.equal(all.on, "all");
  assert.ok(Math.abs(expectedAgreement(groupScoreDiffs(simulated), all.noiseStd) - 0.73) < 1e-6);
  // Different spellings of "none" score alike: only the group with the gold answer has a preference.
  const madeUp = tasks.slice(0, 20).map((task) => ({ task, responses: ["none", "none.", "NONE"] }));
  const mostlyEqual = [...madeUp, { task: tasks[0], responses: [tasks[0].completion, "none"] }];
  const some = calibrateOnGroups(mostlyEqual, 0.73);
  assert.ok(some);
  assert.deepEqual({ on: some.on, pairs: some.pairs, equalScorePairs: some.equalScorePairs }, { on: "different_scores", pairs: 61, equalScorePairs: 60 });
  assert.equal(some.noiseStd, calibrateNoiseStd([goldScore(tasks[0], tasks[0].completion) - goldScore(tasks[0], "none")], 0.73));
  assert.equal(calibrateOnGroups(madeUp, 0.73), undefined);
});

test("pairwiseAgreement counts only the pairs its filter accepts", () => {
  assert.deepEqual(pairwiseAgreement([0, 1, 2], [0, 2, 1]), { agree: 2, pairs: 3 });
  assert.deepEqual(pairwiseAgreement([0, 1, 2], [0, 2, 1], (i, j) => !(i === 1 && j === 2)), { agree: 2, pairs: 2 });
});
