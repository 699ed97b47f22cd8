import { test } from "node:test";
import assert from "node:assert/strict";
import { simulateResponses } from "./responses";
import { Rng } from "./rng";
import { goldScore } from "./scoring";
import { buildInstructionDatasets } from "./tasks";
import { canonicalResponse } from "./words";

const ds = buildInstructionDatasets({ sizes: { sft: 0, rm: 2000, ppo: 0, eval: 0 } });

test("K distinct responses of varied quality, for K up to the paper's 9, deterministic in the rng", () => {
  let withGold = 0;
  const spread: number[] = [];
  for (const t of ds.rm) {
    const rs = simulateResponses(t, 9, new Rng(5, t.id));
    assert.equal(rs.length, 9);
    assert.equal(new Set(rs.map(canonicalResponse)).size, 9, t.id);
    for (const r of rs) assert.ok(r.trim() !== "", t.id);
    if (rs.includes(t.completion)) withGold++;
    const scores = rs.map((r) => goldScore(t, r));
    spread.push(Math.max(...scores) - Math.min(...scores));
    assert.deepEqual(simulateResponses(t, 9, new Rng(5, t.id)), rs);
  }
  assert.ok(withGold > 850 && withGold < 1150, `gold included in ${withGold} of 2000 (goldRate 0.5)`);
  assert.ok(spread.every((s) => s > 0.5), "every set mixes good and bad responses");
});

test("goldRate 0 and 1; impossible K is refused", () => {
  const t = ds.rm[0];
  for (let i = 0; i < 20; i++) {
    assert.ok(!simulateResponses(t, 4, new Rng(i), { goldRate: 0 }).some((r) => canonicalResponse(r) === canonicalResponse(t.completion)));
    assert.equal(simulateResponses(t, 4, new Rng(i), { goldRate: 1 })[0], t.completion);
  }
  assert.throws(() => simulateResponses(t, 100, new Rng(0)), /distinct responses/);
  assert.throws(() => simulateResponses(t, 0, new Rng(0)), /k/);
});
