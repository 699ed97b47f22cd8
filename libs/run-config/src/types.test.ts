// Compile-time checks of the RunConfig type derived from the schema (`pnpm typecheck` runs
// them), plus the runtime facts they rest on.
import { test } from "node:test";
import assert from "node:assert/strict";
import { type RunConfig } from "./run-config";
import { resolveRunConfig } from "./resolve";

test("RunConfig is the schema's type: literal unions, nullables, readonly", () => {
  const c: RunConfig = resolveRunConfig({ ppo: { kl: { controller: "adaptive", target: 6, horizon: 100 } } });
  const controller: "fixed" | "adaptive" = c.ppo.kl.controller;
  const target: number | null = c.ppo.kl.target;
  const preset: "tiny" | "small" | "gpt2-124m" = c.model.preset;
  const checkpoint: string | null = c.model.base_checkpoint;
  const families: readonly string[] = c.data.builtin.families;
  assert.throws(() => {
    // @ts-expect-error the config is readonly (and frozen at run time)
    c.seed = 1;
  }, TypeError);
  // @ts-expect-error n_positions is a number
  const wrong: string = c.model.n_positions;
  // @ts-expect-error no such key
  void c.ppo.kl.betta;
  assert.deepEqual([controller, target, preset, checkpoint, families.length], ["adaptive", 6, "tiny", null, 7]);
  void wrong;
});
