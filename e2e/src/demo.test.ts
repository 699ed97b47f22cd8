// The README's main job, `rlhf demo`, end to end in real processes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RLHF, start, exitWithin } from "./helpers";

test("rlhf demo writes a checkpoint, serves it, queries it and stops it cleanly", async () => {
  const out = join(mkdtempSync(join(tmpdir(), "demo-")), "run");
  const p = start([RLHF, "demo", "--out", out], { RLHF_BACKEND: "cpu" });
  assert.equal(await exitWithin(p, 120_000), 0, p.out());
  const text = p.out();
  assert.match(text, /\[2\/4\] reference-model is SERVING on 127\.0\.0\.1:\d+/);
  assert.match(text, /\[3\/4\] LogProbs of 3 sequences/);
  assert.match(text, /bad input is refused: INVALID_ARGUMENT: batch\.tokens\[2\]: id 519 is outside the vocabulary \[0, 512\)/);
  assert.match(text, /\[4\/4\] SIGTERM -> reference-model drained and exited with code 0/);
  assert.ok(existsSync(join(out, "base-model", "config.json")));
  assert.ok(existsSync(join(out, "base-model", "model.safetensors")));
  // random tiny model: every mean log-prob is close to uniform ln(1/512) = -6.238
  for (const m of text.matchAll(/mean (-?\d+\.\d+) nats\/token/g)) assert.ok(Math.abs(Number(m[1]) + 6.238) < 0.5, m[0]);
});
