// TLS and mutual TLS on real servers (127.0.0.1:0) with certificates made here by openssl: a TLS
// handshake works, a plaintext client is refused, mTLS refuses clients without a certificate of
// its CA; a server on an address other than loopback refuses to start without TLS.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { referenceModel } from "@rlhf/proto";
import {
  checkHealth,
  clientCredentials,
  clientTlsFromEnv,
  createClient,
  createLogger,
  insecureFromEnv,
  isLoopback,
  resultOrStatus as call,
  serverTlsFromEnv,
  startServer,
  unary,
  ConfigError,
  type RunningServer,
} from "./index";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

const log = createLogger({ service: "tls-test", level: "silent" });
const dir = mkdtempSync(join(tmpdir(), "kit-tls-"));
const servers: RunningServer[] = [];
after(async () => {
  await Promise.all(servers.map((s) => s.shutdown(200)));
  rmSync(dir, { recursive: true, force: true });
});

const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
const p = (name: string) => join(dir, name);
/** A CA: `<name>.pem`, `<name>.key`. */
function ca(name: string): void {
  openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", p(`${name}.key`), "-out", p(`${name}.pem`), "-days", "1", "-subj", `/CN=${name}`);
}
/** A certificate `<name>.pem` / `<name>.key` signed by `caName`, for 127.0.0.1 and localhost. */
function cert(name: string, caName: string): void {
  openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", p(`${name}.key`), "-out", p(`${name}.csr`), "-subj", `/CN=${name}`);
  writeFileSync(p(`${name}.ext`), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n");
  openssl("x509", "-req", "-in", p(`${name}.csr`), "-CA", p(`${caName}.pem`), "-CAkey", p(`${caName}.key`), "-CAcreateserial", "-out", p(`${name}.pem`), "-days", "1", "-extfile", p(`${name}.ext`));
}
ca("ca");
ca("other-ca");
cert("server", "ca");
cert("client", "ca");
cert("intruder", "other-ca");

const impl: Partial<referenceModel.ReferenceModelServiceServer> = {
  getInfo: unary(log, async () => ({ backend: "tls", maxBatchSequences: 1, maxBatchTokens: 1, weights: undefined, config: undefined })),
};
async function serve(env: Record<string, string>, host = "127.0.0.1", insecure = false): Promise<RunningServer> {
  const s = await startServer({
    services: [{ definition: referenceModel.ReferenceModelServiceService, implementation: impl as grpc.UntypedServiceImplementation }],
    log,
    host,
    auth: null,
    tls: serverTlsFromEnv(env) ?? null,
    insecure,
  });
  servers.push(s);
  return s;
}
/** GetInfo through a client with these client-side variables (plaintext without GRPC_TLS_CA_FILE). */
async function getInfo(address: string, env: Record<string, string>): Promise<string> {
  const { credentials, options } = clientCredentials(clientTlsFromEnv(env));
  const c = createClient(referenceModel.ReferenceModelServiceClient, address, { deadlineMs: testDeadlineMs(3000), token: null, credentials, channelOptions: options });
  try {
    const r = await call(c.unary("getInfo", {}));
    return typeof r === "string" ? r.split(":")[0] : r.backend;
  } finally {
    c.close();
  }
}

const SERVER = { GRPC_TLS_CERT_FILE: p("server.pem"), GRPC_TLS_KEY_FILE: p("server.key") };

test("TLS: a client trusting the CA completes the handshake; a plaintext client or one trusting another CA is refused", async () => {
  const s = await serve(SERVER);
  assert.equal(await getInfo(s.address, { GRPC_TLS_CA_FILE: p("ca.pem") }), "tls");
  assert.equal(await getInfo(s.address, {}), "UNAVAILABLE", "plaintext client");
  assert.equal(await getInfo(s.address, { GRPC_TLS_CA_FILE: p("other-ca.pem") }), "UNAVAILABLE", "server certificate not trusted");
  // The name checked can be set (a Kubernetes Service name in the certificate, an IP in the address).
  assert.equal(await getInfo(s.address, { GRPC_TLS_CA_FILE: p("ca.pem"), GRPC_TLS_SERVER_NAME: "elsewhere" }), "UNAVAILABLE");
  assert.equal(await getInfo(s.address, { GRPC_TLS_CA_FILE: p("ca.pem"), GRPC_TLS_SERVER_NAME: "localhost" }), "tls");
});

test("mutual TLS: only clients with a certificate from GRPC_TLS_CLIENT_CA_FILE get in", async () => {
  const s = await serve({ ...SERVER, GRPC_TLS_CLIENT_CA_FILE: p("ca.pem") });
  const trust = { GRPC_TLS_CA_FILE: p("ca.pem") };
  assert.equal(await getInfo(s.address, { ...trust, GRPC_TLS_CLIENT_CERT_FILE: p("client.pem"), GRPC_TLS_CLIENT_KEY_FILE: p("client.key") }), "tls");
  assert.equal(await getInfo(s.address, trust), "UNAVAILABLE", "no client certificate");
  assert.equal(await getInfo(s.address, { ...trust, GRPC_TLS_CLIENT_CERT_FILE: p("intruder.pem"), GRPC_TLS_CLIENT_KEY_FILE: p("intruder.key") }), "UNAVAILABLE", "a certificate of another CA");
  assert.equal(await getInfo(s.address, {}), "UNAVAILABLE", "plaintext");
  // A service calling another presents its own server certificate when no client one is set.
  assert.equal(await getInfo(s.address, { ...trust, ...SERVER }), "tls");
});

test("GRPC_HEALTH_PORT: health alone on a plaintext port for Kubernetes probes, while the main port needs mTLS", async () => {
  const s = await startServer({
    services: [{ definition: referenceModel.ReferenceModelServiceService, implementation: impl as grpc.UntypedServiceImplementation }],
    log,
    auth: null,
    tls: serverTlsFromEnv({ ...SERVER, GRPC_TLS_CLIENT_CA_FILE: p("ca.pem") }) ?? null,
    healthPort: 0,
  });
  servers.push(s);
  assert.ok(s.healthPort !== undefined && s.healthPort !== s.port);
  assert.equal(await checkHealth(`127.0.0.1:${s.healthPort}`, "liveness"), "SERVING");
  assert.equal(await checkHealth(`127.0.0.1:${s.healthPort}`), "NOT_SERVING");
  s.setServing(true);
  assert.equal(await checkHealth(`127.0.0.1:${s.healthPort}`), "SERVING", "the same statuses as the main port");
  await assert.rejects(checkHealth(s.address), "plaintext health on the main port is refused");
  // Only health is there: every other call is UNIMPLEMENTED.
  assert.equal(await getInfo(`127.0.0.1:${s.healthPort}`, {}), "UNIMPLEMENTED");
});

test("an address other than loopback needs TLS or an explicit RLHF_INSECURE=1", async () => {
  await assert.rejects(serve({}, "0.0.0.0"), (e: unknown) => e instanceof ConfigError && /GRPC_HOST 0\.0\.0\.0 is not loopback and no TLS is configured: set GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE .*RLHF_INSECURE=1/.test(e.message));
  const insecure = await serve({}, "0.0.0.0", true);
  assert.ok(insecure.port > 0);
  const secure = await serve(SERVER, "0.0.0.0");
  assert.equal(await getInfo(`127.0.0.1:${secure.port}`, { GRPC_TLS_CA_FILE: p("ca.pem") }), "tls");
  assert.deepEqual(["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "0.0.0.0", "10.0.0.5", "::"].map(isLoopback), [true, true, true, true, true, false, false, false]);
  assert.deepEqual([insecureFromEnv({}), insecureFromEnv({ RLHF_INSECURE: "1" }), insecureFromEnv({ RLHF_INSECURE: "0" })], [false, true, false]);
  assert.throws(() => insecureFromEnv({ RLHF_INSECURE: "yes" }), /RLHF_INSECURE must be 1 or 0/);
});

test("TLS variables are checked at start with one clear line, never echoing a file", () => {
  assert.throws(() => serverTlsFromEnv({ GRPC_TLS_CERT_FILE: p("server.pem") }), /set both GRPC_TLS_CERT_FILE and GRPC_TLS_KEY_FILE, or neither/);
  assert.throws(() => serverTlsFromEnv({ GRPC_TLS_CLIENT_CA_FILE: p("ca.pem") }), /GRPC_TLS_CLIENT_CA_FILE needs GRPC_TLS_CERT_FILE/);
  assert.throws(() => serverTlsFromEnv({ ...SERVER, GRPC_TLS_KEY_FILE: p("missing.key") }), /GRPC_TLS_KEY_FILE: cannot read .*missing\.key \(ENOENT\)/);
  writeFileSync(p("not-pem"), "s3cret-bytes");
  assert.throws(
    () => serverTlsFromEnv({ ...SERVER, GRPC_TLS_KEY_FILE: p("not-pem") }),
    (e: unknown) => e instanceof ConfigError && /is not a PEM file$/.test(e.message) && !e.message.includes("s3cret"),
  );
  assert.throws(() => clientTlsFromEnv({ GRPC_TLS_CLIENT_CERT_FILE: p("client.pem") }), /GRPC_TLS_CLIENT_CERT_FILE needs GRPC_TLS_CA_FILE/);
  assert.throws(() => clientTlsFromEnv({ GRPC_TLS_CA_FILE: p("ca.pem"), GRPC_TLS_CLIENT_CERT_FILE: p("client.pem") }), /set both GRPC_TLS_CLIENT_CERT_FILE and GRPC_TLS_CLIENT_KEY_FILE/);
  assert.equal(serverTlsFromEnv({}), undefined);
  assert.equal(clientTlsFromEnv({}), undefined);
});
