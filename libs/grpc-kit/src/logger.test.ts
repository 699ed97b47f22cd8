// Secrets never reach a log line: the logger redacts them from fields, child bindings, errors and messages.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { createLogger, redactString, REDACTED } from "./index";

function capture() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, cb) {
      lines.push(...String(chunk).split("\n").filter(Boolean));
      cb();
    },
  });
  return { log: createLogger({ service: "redact-test", destination: sink, level: "debug" }), lines };
}

test("NATS URL passwords, OTLP headers and endpoint credentials, bearer tokens and token fields are redacted", () => {
  const { log, lines } = capture();
  log.warn({ servers: ["nats://rlhf:n4ts-pa55@nats-0:4222", "nats://s3cr3t-token@nats-1:4222"] }, "cannot reach NATS");
  log.info({ otlp: { endpoint: "https://user:otlp-pa55@collector:4318", headers: "api-key=otlp-k3y,x-tenant=a" } }, "exporting");
  log.info({ env: { OTEL_EXPORTER_OTLP_HEADERS: "Authorization=Basic dXNlcjpwYXNz", RLHF_AUTH_TOKEN: "tok-123" } }, "config");
  log.info({ metadata: { authorization: "Bearer abc.def-123" }, token: "tok-456", password: "pw-789", authToken: "tok-000" }, "call");
  log.child({ url: "nats://admin:child-pa55@nats:4222" }).info("child bound");
  log.error({ err: new Error("connect to nats://rlhf:err-pa55@nats:4222 failed") }, "failed");
  log.info("message with Bearer msg-t0ken and https://u:msg-pa55@host/x");
  log.info({ tokens: { train: 1200 }, maxBatchTokens: 65536, eosTokenId: 256, pageToken: "", url: "nats://nats:4222" }, "counts stay");
  const all = lines.join("\n");
  for (const secret of ["n4ts-pa55", "s3cr3t-token", "otlp-pa55", "otlp-k3y", "dXNlcjpwYXNz", "tok-123", "abc.def-123", "tok-456", "pw-789", "tok-000", "child-pa55", "err-pa55", "msg-t0ken", "msg-pa55"]) {
    assert.ok(!all.includes(secret), `${secret} leaked:\n${all}`);
  }
  assert.ok(all.includes(`nats://rlhf:${REDACTED}@nats-0:4222`), "the URL stays readable, without its password");
  const counts = JSON.parse(lines.at(-1) as string) as Record<string, unknown>;
  assert.deepEqual([counts.tokens, counts.maxBatchTokens, counts.eosTokenId, counts.url], [{ train: 1200 }, 65536, 256, "nats://nats:4222"], "counts and plain URLs are not secrets");
  assert.equal(JSON.parse(lines[0]).service, "redact-test");
});

test("redactString masks only the secret part", () => {
  assert.equal(redactString("nats://a:b@h:4222,nats://h2:4222"), `nats://a:${REDACTED}@h:4222,nats://h2:4222`);
  assert.equal(redactString("authorization: Bearer xyz"), `authorization: Bearer ${REDACTED}`);
  assert.equal(redactString("api-key=k,x-tenant=t"), `api-key=${REDACTED},x-tenant=t`);
  assert.equal(redactString("a plain message"), "a plain message");
});
