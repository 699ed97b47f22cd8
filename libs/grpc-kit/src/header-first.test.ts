import { test } from "node:test";
import assert from "node:assert/strict";
import { DomainError } from "@rlhf/errors";
import { readHeaderFirst } from "./header-first";

type Part = { $case: "config"; config: { n: number } } | { $case: "items"; items: number[] } | { $case: "validationItems"; validationItems: number[] };

async function* stream(parts: (Part | undefined)[]) {
  for (const part of parts) yield { part };
}

function read(parts: (Part | undefined)[], seen: string[] = []) {
  return readHeaderFirst(stream(parts), {
    header: "config",
    cases: "config, items, validation_items",
    onHeader: (p) => p.config.n,
    onPart: (p, field, n) => void seen.push(`${field} ${p.$case} ${n}`),
  });
}

test("the header comes first, once; body parts get it", async () => {
  const seen: string[] = [];
  assert.equal(await read([{ $case: "config", config: { n: 7 } }, { $case: "items", items: [1] }, { $case: "validationItems", validationItems: [2] }], seen), 7);
  assert.deepEqual(seen, ["requests[1] items 7", "requests[2] validationItems 7"]);
});

test("the protocol's errors name the message and field", async () => {
  const bad = (field: string, msg: string) => (e: unknown) => e instanceof DomainError && e.code === "INVALID_ARGUMENT" && e.message === `${field}: ${msg}`;
  await assert.rejects(read([undefined]), bad("requests[0].part", "set one of config, items, validation_items"));
  await assert.rejects(read([{ $case: "validationItems", validationItems: [] }]), bad("requests[0].validation_items", "the first message must be the config"));
  await assert.rejects(read([{ $case: "config", config: { n: 1 } }, { $case: "config", config: { n: 1 } }]), bad("requests[1].config", "the config must be sent exactly once, first"));
  await assert.rejects(read([]), bad("config", "the first message must be the config"));
  await assert.rejects(
    readHeaderFirst(stream([]), { header: "config", cases: "", missing: "the stream held no config", onHeader: () => 0, onPart: () => undefined }),
    bad("config", "the stream held no config"),
  );
});
