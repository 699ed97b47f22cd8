import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError, checkEnvDocs } from "@rlhf/grpc-kit";
import { loadConfig, PRETRAIN_MIX_ENV } from "./config";

test("defaults", () => {
  const c = loadConfig({});
  assert.deepEqual(
    { ...c },
    {
      host: "127.0.0.1",
      port: 50054,
      policyAddr: undefined,
      tokenizer: "gpt2",
      validFraction: 0.05,
      maxSequences: 64,
      maxSequenceLength: 1024,
      maxCachedVersions: 2,
      maxCachedCorpora: 2,
      dataRoots: { dirs: ["runs"], name: "DATA_ROOT" },
      queueCapacity: 8,
      maxReceiveBytes: 4 * 1024 * 1024,
      maxUploadBytes: 8 * 1024 ** 3,
      policyDeadlineMs: 600_000,
      shutdownGraceMs: 10_000,
      metricsHost: "127.0.0.1",
      metricsPort: 9464,
      metricsPortRequired: false,
    },
  );
  const d = loadConfig({ TOKENIZER: "byte", VALID_FRACTION: "0.1", POLICY_ADDR: "dns:///policy:50051", MAX_CACHED_VERSIONS: "1" });
  assert.deepEqual([d.tokenizer, d.validFraction, d.policyAddr, d.maxCachedVersions], ["byte", 0.1, "dns:///policy:50051", 1]);
  assert.equal(loadConfig({ VALID_FRACTION: "0" }).validFraction, 0);
  assert.deepEqual([loadConfig({ DATA_ROOT: "/data:/corpora", MAX_CACHED_CORPORA: "4" }).dataRoots.dirs, loadConfig({ MAX_CACHED_CORPORA: "4" }).maxCachedCorpora], [["/data", "/corpora"], 4]);
});

test("a malformed variable is one clear line naming it", () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ TOKENIZER: "bpe2" }, /^TOKENIZER must be gpt2, byte or bpe, got "bpe2"$/],
    [{ VALID_FRACTION: "0.6" }, /^VALID_FRACTION must be a number in \[0, 0\.5\], got "0\.6"$/],
    [{ VALID_FRACTION: "abc" }, /^VALID_FRACTION must be a number/],
    [{ VALID_FRACTION: "-0.1" }, /^VALID_FRACTION must be a number/],
    [{ MAX_SEQUENCES: "1024", MAX_SEQUENCE_LENGTH: "1024" }, /^MAX_SEQUENCES x MAX_SEQUENCE_LENGTH must be at most 524288 tokens .*got 1024 x 1024$/],
    [{ MAX_SEQUENCE_LENGTH: "1" }, /^MAX_SEQUENCE_LENGTH must be in \[2, /],
    [{ MAX_CACHED_VERSIONS: "0" }, /^MAX_CACHED_VERSIONS must be in \[1, 64\], got 0$/],
    [{ MAX_CACHED_CORPORA: "100" }, /^MAX_CACHED_CORPORA must be in \[1, 64\], got 100$/],
    [{ POLICY_ADDR: "policy" }, /^POLICY_ADDR must look like host:port/],
    [{ GRPC_PORT: "x" }, /^GRPC_PORT must be an integer/],
  ];
  for (const [env, re] of cases) assert.throws(() => loadConfig(env), (e: unknown) => e instanceof ConfigError && re.test(e.message), JSON.stringify(env));
});

test("docs/services.md lists the variables of the config table (run `pnpm docs:env` after changing it)", () => {
  checkEnvDocs(__dirname, "pretrain-mix", PRETRAIN_MIX_ENV);
});
