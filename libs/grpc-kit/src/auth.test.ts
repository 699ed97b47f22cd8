// Bearer tokens with roles on a real server (127.0.0.1:0): no token and wrong tokens are
// UNAUTHENTICATED, a token without the role PERMISSION_DENIED, health stays open, reflection needs
// a token, and a token file is read again when it changes. Two contracts are served as vehicles:
// the reference model (a model service: `service` role, GetInfo `viewer`) and the coordinator
// (`operator` for StartRun, `viewer` for GetRun).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import * as grpc from "@grpc/grpc-js";
import { descriptorSetPath, labeling, policy, ppoCoordinator, pretrainMix, referenceModel, rewardModel } from "@rlhf/proto";
import {
  checkHealth,
  clientTokenFromEnv,
  createClient,
  createLogger,
  listServicesByReflection,
  requiredRole,
  resultOrStatus as call,
  serverAuthFromEnv,
  httpViewerAuthorizer,
  startServer,
  unary,
  ConfigError,
  type RunningServer,
} from "./index";
import { testDeadlineMs } from "@rlhf/errors/dist/testing/deadline";

const lines: string[] = [];
const log = createLogger({
  service: "auth-test",
  level: "debug",
  destination: new Writable({
    write(chunk, _enc, cb) {
      lines.push(String(chunk));
      cb();
    },
  }),
});

const dir = mkdtempSync(join(tmpdir(), "kit-auth-"));
const TOKENS = { all: "all-0123456789abcdef", service: "svc-0123456789abcdef", operator: "op-0123456789abcdef", viewer: "view-0123456789abcdef" };
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text, { mode: 0o600 });
  return p;
};
const env = {
  RLHF_AUTH_TOKEN_FILE: file("all", `${TOKENS.all}\n`),
  RLHF_SERVICE_TOKEN_FILE: file("service", `# the coordinator's token\n${TOKENS.service}\n`),
  RLHF_OPERATOR_TOKEN_FILE: file("operator", TOKENS.operator),
  RLHF_VIEWER_TOKEN_FILE: file("viewer", `${TOKENS.viewer}\n\n`),
};

const refImpl: Partial<referenceModel.ReferenceModelServiceServer> = {
  logProbs: unary(log, async () => ({ logprobs: [], lengths: [], weights: undefined })),
  getInfo: unary(log, async () => ({ backend: "cpu", maxBatchSequences: 1, maxBatchTokens: 1, weights: undefined, config: undefined })),
};
const coordImpl: Partial<ppoCoordinator.PpoCoordinatorServiceServer> = {
  startRun: unary(log, async () => ({ run: undefined })),
  getRun: unary(log, async () => ({ run: undefined })),
};

let srv: RunningServer;
async function server(): Promise<RunningServer> {
  srv ??= await startServer({
    services: [
      { definition: referenceModel.ReferenceModelServiceService, implementation: refImpl as grpc.UntypedServiceImplementation },
      { definition: ppoCoordinator.PpoCoordinatorServiceService, implementation: coordImpl as grpc.UntypedServiceImplementation },
    ],
    log,
    descriptorSetPath,
    auth: serverAuthFromEnv(env, log),
  });
  srv.setServing(true);
  return srv;
}
after(async () => {
  await srv?.shutdown(500);
  rmSync(dir, { recursive: true, force: true });
});

/** The outcome of a model call, a read-only call and an operator call with `token`. */
async function outcomes(token: string | null): Promise<string[]> {
  const s = await server();
  const opts = { deadlineMs: testDeadlineMs(5000), token: token === null ? null : () => token };
  const ref = createClient(referenceModel.ReferenceModelServiceClient, s.address, opts);
  const coord = createClient(ppoCoordinator.PpoCoordinatorServiceClient, s.address, opts);
  const short = (r: unknown) => (typeof r === "string" ? r : "OK");
  try {
    return [
      short(await call(ref.unary("logProbs", { batch: undefined, temperature: 1 }))),
      short(await call(ref.unary("getInfo", {}))),
      short(await call(coord.unary("getRun", { runId: "x" }))),
      short(await call(coord.unary("startRun", { configJson: "", runId: "", displayName: "", validateOnly: true }))),
    ];
  } finally {
    ref.close();
    coord.close();
  }
}

const UNAUTH = "UNAUTHENTICATED: missing or invalid bearer token";
const DENIED = "PERMISSION_DENIED: the token's role does not allow this call";

test("without a token or with a wrong one every call is UNAUTHENTICATED, alike; health stays open", async () => {
  assert.deepEqual(await outcomes(null), [UNAUTH, UNAUTH, UNAUTH, UNAUTH]);
  assert.deepEqual(await outcomes("wrong-0123456789abcdef"), [UNAUTH, UNAUTH, UNAUTH, UNAUTH]);
  assert.deepEqual(await outcomes(TOKENS.all.slice(0, -1)), [UNAUTH, UNAUTH, UNAUTH, UNAUTH], "a prefix of a token is not a token");
  const s = await server();
  assert.equal(await checkHealth(s.address), "SERVING");
  assert.equal(await checkHealth(s.address, "rlhf.reference_model.v1.ReferenceModelService"), "SERVING");
  // Reflection and each served method need the token; only the contracts (public .proto files)
  // say which methods exist: grpc-js answers UNIMPLEMENTED for an unknown path before any interceptor.
  const other = createClient(rewardModel.RewardModelServiceClient, s.address, { deadlineMs: testDeadlineMs(5000), token: () => TOKENS.all });
  assert.match(String(await call(other.unary("getInfo", {}))), /^UNIMPLEMENTED/);
  other.close();
});

test("roles: service calls the model services, operator starts runs, viewer reads; RLHF_AUTH_TOKEN_FILE grants all", async () => {
  assert.deepEqual(await outcomes(TOKENS.all), ["OK", "OK", "OK", "OK"]);
  assert.deepEqual(await outcomes(TOKENS.service), ["OK", "OK", "OK", DENIED]);
  assert.deepEqual(await outcomes(TOKENS.operator), [DENIED, "OK", "OK", "OK"]);
  assert.deepEqual(await outcomes(TOKENS.viewer), [DENIED, "OK", "OK", DENIED]);
  assert.equal(requiredRole("/grpc.health.v1.Health/Check"), "none");
  assert.equal(requiredRole("/rlhf.ppo_coordinator.v1.PpoCoordinatorService/WatchRun"), "viewer");
  assert.equal(requiredRole("/rlhf.ppo_coordinator.v1.PpoCoordinatorService/CancelRun"), "operator");
  assert.equal(requiredRole("/rlhf.policy.v1.PolicyService/StreamWeights"), "service");
  // Labeling: submitting batches and reading rankings is the coordinator's (service); progress is viewer.
  assert.equal(requiredRole("/rlhf.labeling.v1.LabelingService/SubmitBatch"), "service");
  assert.equal(requiredRole("/rlhf.labeling.v1.LabelingService/ListRankings"), "service");
  assert.equal(requiredRole("/rlhf.labeling.v1.LabelingService/WatchBatch"), "viewer");
  assert.equal(requiredRole("/rlhf.labeling.v1.LabelingService/GetBatch"), "viewer");
});

test("every method of every service's contract: UNAUTHENTICATED without a token, past the check with one, PERMISSION_DENIED exactly where the role lacks", async () => {
  const definitions = [policy.PolicyServiceService, rewardModel.RewardModelServiceService, referenceModel.ReferenceModelServiceService, pretrainMix.PretrainMixServiceService, ppoCoordinator.PpoCoordinatorServiceService, labeling.LabelingServiceService];
  // No implementations: a call that gets past authentication answers UNIMPLEMENTED.
  const all = await startServer({
    services: definitions.map((d) => ({ definition: d as unknown as grpc.ServiceDefinition, implementation: {} })),
    log,
    auth: serverAuthFromEnv(env, log),
  });
  const client = new grpc.Client(all.address, grpc.credentials.createInsecure());
  const raw = (b: Buffer) => b;
  /** The status of one call of `m` with an empty message (valid protobuf for every request type). */
  const statusOf = (m: grpc.MethodDefinition<unknown, unknown>, token?: string): Promise<string> =>
    new Promise((resolve) => {
      const md = new grpc.Metadata();
      if (token) md.set("authorization", `Bearer ${token}`);
      const opts = { deadline: Date.now() + testDeadlineMs(5000) };
      const onStatus = (st: { code: number }) => resolve(grpc.status[st.code]);
      if (!m.requestStream && !m.responseStream) client.makeUnaryRequest(m.path, raw, raw, Buffer.alloc(0), md, opts, () => undefined).on("status", onStatus);
      else if (!m.requestStream) {
        const c = client.makeServerStreamRequest(m.path, raw, raw, Buffer.alloc(0), md, opts);
        c.on("data", () => undefined).on("error", () => undefined).on("status", onStatus);
      } else if (!m.responseStream) {
        const c = client.makeClientStreamRequest(m.path, raw, raw, md, opts, () => undefined);
        c.on("status", onStatus);
        c.end();
      } else {
        const c = client.makeBidiStreamRequest(m.path, raw, raw, md, opts);
        c.on("data", () => undefined).on("error", () => undefined).on("status", onStatus);
        c.end();
      }
    });
  try {
    let methods = 0;
    for (const def of definitions) {
      for (const m of Object.values(def) as grpc.MethodDefinition<unknown, unknown>[]) {
        methods++;
        assert.equal(await statusOf(m), "UNAUTHENTICATED", `${m.path} without a token`);
        assert.equal(await statusOf(m, "not-a-token-0123456789"), "UNAUTHENTICATED", `${m.path} with a wrong token`);
        assert.equal(await statusOf(m, TOKENS.all), "UNIMPLEMENTED", `${m.path} with the RLHF_AUTH_TOKEN_FILE token`);
        const needed = requiredRole(m.path);
        assert.equal(await statusOf(m, TOKENS.viewer), needed === "viewer" ? "UNIMPLEMENTED" : "PERMISSION_DENIED", `${m.path} as viewer`);
        assert.equal(await statusOf(m, TOKENS.operator), needed === "service" ? "PERMISSION_DENIED" : "UNIMPLEMENTED", `${m.path} as operator`);
      }
    }
    assert.ok(methods >= 30, `${methods} methods`);
  } finally {
    client.close();
    await all.shutdown(200);
  }
});

test("reflection needs a token (any role)", async () => {
  const s = await server();
  assert.match(String(await listServicesByReflection(s.address).catch((e: grpc.ServiceError) => `${grpc.status[e.code]}: ${e.details}`)), /^UNAUTHENTICATED/);
  assert.deepEqual(await listServicesByReflection(s.address, 5000, TOKENS.viewer), [
    "grpc.health.v1.Health",
    "rlhf.ppo_coordinator.v1.PpoCoordinatorService",
    "rlhf.reference_model.v1.ReferenceModelService",
  ]);
});

test("a token file is read again when it changes (rotation without a restart), on the server and the client", async () => {
  const rotated = "svc-rotated-0123456789";
  const clientToken = clientTokenFromEnv({ RLHF_CLIENT_TOKEN_FILE: env.RLHF_SERVICE_TOKEN_FILE });
  assert.equal(clientToken?.(), TOKENS.service);
  // Written beside and renamed over, as a Kubernetes Secret update swaps its files.
  writeFileSync(join(dir, "service.new"), `${rotated}\n`);
  renameSync(join(dir, "service.new"), env.RLHF_SERVICE_TOKEN_FILE);
  // Files are checked at most once a second: poll until the change is seen (no timing assertion).
  let seen: string[] = [];
  for (let i = 0; i < testDeadlineMs(10_000) / 200; i++) {
    seen = [...(await outcomes(rotated)).slice(0, 1), ...(await outcomes(TOKENS.service)).slice(0, 1)];
    if (seen[0] === "OK") break;
    await new Promise((r) => setTimeout(r, 200));
  }
  assert.deepEqual(seen, ["OK", UNAUTH], "the new token works, the old one no longer does");
  await new Promise((r) => setTimeout(r, 1100));
  assert.equal(clientToken?.(), rotated);
  // An unreadable file later keeps the tokens read before.
  rmSync(env.RLHF_VIEWER_TOKEN_FILE);
  await new Promise((r) => setTimeout(r, 1100));
  assert.deepEqual((await outcomes(TOKENS.viewer)).slice(1, 2), ["OK"]);
});

test("no token is ever logged; bad token files stop the start with one line", async () => {
  const all = lines.join("");
  for (const t of [...Object.values(TOKENS), "svc-rotated-0123456789", "wrong-0123456789abcdef"]) assert.ok(!all.includes(t), `${t} was logged`);
  assert.ok(all.includes('"code":"UNAUTHENTICATED","reason":"no token"') && all.includes('"reason":"unknown token"'), "refusals are logged, with why");
  assert.throws(() => serverAuthFromEnv({ RLHF_AUTH_TOKEN_FILE: join(dir, "missing") }), (e: unknown) => e instanceof ConfigError && /RLHF_AUTH_TOKEN_FILE: cannot read .*missing \(ENOENT\)/.test(e.message));
  assert.throws(() => serverAuthFromEnv({ RLHF_AUTH_TOKEN_FILE: file("empty", "# nothing\n") }), /holds no token/);
  assert.throws(() => serverAuthFromEnv({ RLHF_AUTH_TOKEN_FILE: file("short", "abc\n") }), /shorter than 16 characters/);
  assert.equal(serverAuthFromEnv({}), undefined);
  assert.equal(clientTokenFromEnv({ RLHF_TOKEN: " tok-from-env " })?.(), "tok-from-env");
});

test("the Prometheus endpoint's check: a Bearer token of any role (all include viewer), nothing else", () => {
  const own = { RLHF_SERVICE_TOKEN_FILE: file("m-service", TOKENS.service), RLHF_OPERATOR_TOKEN_FILE: file("m-operator", TOKENS.operator), RLHF_VIEWER_TOKEN_FILE: file("m-viewer", TOKENS.viewer), RLHF_AUTH_TOKEN_FILE: file("m-all", TOKENS.all) };
  const auth = serverAuthFromEnv(own, log);
  assert.ok(auth);
  const ok = httpViewerAuthorizer(auth);
  for (const t of Object.values(TOKENS)) assert.equal(ok(`Bearer ${t}`), true, t);
  assert.equal(ok(`bearer ${TOKENS.viewer}`), true, "the scheme is case-insensitive");
  for (const bad of [undefined, "", TOKENS.viewer, `Basic ${TOKENS.viewer}`, "Bearer wrong-0123456789abcdef", `Bearer ${TOKENS.viewer} x`]) assert.equal(ok(bad), false, String(bad));
});
