import { test } from "node:test";
import assert from "node:assert/strict";
import { ConfigError } from "@rlhf/errors";
import { envDocsBlock, envTableMarkdown, envVar, listenEnv, parseEnv, withEnvDocs } from "./env-table";

const TABLE = {
  ...listenEnv(5000),
  limit: envVar.int("LIMIT", 4 * 1024 * 1024, { min: 1024, max: 1024 ** 3, bytes: true, doc: "a | limit" }),
  eos: envVar.optionalInt("EOS", { min: 0, max: 9, defaultText: "none", doc: "an id" }),
  mode: envVar.choice("MODE", ["a", "b", "c"] as const, "a", { doc: "a mode" }),
  frac: envVar.fraction("FRAC", 0.05, 0.5, "a fraction"),
  derived: envVar.derived("not a variable", (env) => env.LIMIT !== undefined),
};

test("parseEnv reads every entry, with the kit's one-line errors", () => {
  assert.deepEqual(parseEnv(TABLE, {}), { host: "127.0.0.1", port: 5000, limit: 4 * 1024 * 1024, eos: undefined, mode: "a", frac: 0.05, derived: false });
  assert.deepEqual(parseEnv(TABLE, { GRPC_PORT: "0", EOS: "3", MODE: "c", FRAC: "0.5", LIMIT: "2048" }), { host: "127.0.0.1", port: 0, limit: 2048, eos: 3, mode: "c", frac: 0.5, derived: true });
  const bad: [Record<string, string>, string][] = [
    [{ LIMIT: "1" }, "LIMIT must be in [1024, 1073741824], got 1"],
    [{ EOS: "x" }, 'EOS must be an integer, got "x"'],
    [{ MODE: "d" }, 'MODE must be a, b or c, got "d"'],
    [{ FRAC: "0.6" }, 'FRAC must be a number in [0, 0.5], got "0.6"'],
  ];
  for (const [env, msg] of bad) assert.throws(() => parseEnv(TABLE, env), (e: unknown) => e instanceof ConfigError && e.message === msg);
});

test("the documentation is one row per variable, and replaces only its block", () => {
  const md = envTableMarkdown(TABLE);
  assert.deepEqual(md.split("\n").slice(0, 5), [
    "| variable | default | limits | meaning |",
    "|---|---|---|---|",
    "| `GRPC_HOST` | 127.0.0.1 |  | interface to listen on (loopback only by default) |",
    "| `GRPC_PORT` | 5000 | 0..65535 | port to listen on; 0 picks a free one |",
    "| `LIMIT` | 4 MiB | 1,024..1 GiB | a \\| limit |",
  ]);
  assert.equal(md.split("\n").filter((l) => l.startsWith("| `")).length, 6);
  const doc = "# x\n\n<!-- env:svc (generated from the service's config table: pnpm docs:env) -->\nold\n<!-- /env:svc -->\n\nafter\n";
  const next = withEnvDocs(doc, "svc", TABLE);
  assert.equal(envDocsBlock(next, "svc"), md);
  assert.ok(next.startsWith("# x\n\n") && next.endsWith("<!-- /env:svc -->\n\nafter\n"));
  assert.equal(envDocsBlock(doc, "other"), undefined);
});
