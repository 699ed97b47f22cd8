// The panel and the comparison index travel with a batch and read back exactly.
import { test } from "node:test";
import assert from "node:assert/strict";
import { panelSource, parsePanelSource, splitComparisonKey } from "./panel";

test("panelSource / parsePanelSource: σ reads back to the same double; other source texts name no panel", () => {
  for (const noiseStd of [0.15389477940484003, 1e-7, 2.5, 0]) {
    const p = { labelers: 4, seed: 5, noiseStd };
    assert.deepEqual(parsePanelSource(`run r1, rankings stage; ${panelSource(p)}`), p);
  }
  assert.equal(parsePanelSource("run r1, rankings stage"), undefined);
  assert.equal(parsePanelSource("simulated panel labelers=0 seed=1 noise_std=0.1"), undefined);
});

test("splitComparisonKey: `<task id>#<index>`, or a plain key", () => {
  assert.deepEqual(splitComparisonKey("nouns:ca01.0#17"), { taskId: "nouns:ca01.0", index: 17 });
  assert.deepEqual(splitComparisonKey("nouns:ca01.0"), { taskId: "nouns:ca01.0" });
  assert.deepEqual(splitComparisonKey("a#b"), { taskId: "a#b" });
});
