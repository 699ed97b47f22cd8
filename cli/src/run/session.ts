/**
 * One session of `rlhf demo`, `rlhf run` or `rlhf resume`: the five services as child processes
 * on free loopback ports (each runs `rlhf serve <name>`), a run started (or resumed) on the
 * coordinator, its events followed and rendered, and the children stopped at the end.
 *
 * Order of start-up: the coordinator first, because it resolves the run config (StartRun with
 * validate_only, or GetRun of the run to resume) and the resolved `model.tokenizer` is what the
 * policy and pretrain-mix must be started with; a bad config is reported before the model
 * services load. Then the four model services, in parallel.
 *
 * Ctrl-C once: CancelRun, keep following until the run reports CANCELLED (it stays resumable),
 * then stop. Ctrl-C twice: SIGKILL the children at once. SIGTERM / SIGHUP: stop the children
 * gracefully without cancelling (the coordinator marks the run FAILED on its next start; it can
 * be resumed).
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { delimiter, isAbsolute, join, relative, resolve } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { ppoCoordinator } from "@rlhf/proto";
import { PATH_KEYS } from "@rlhf/run-config";
import { createClient, freePort, waitForServing, type KitClient } from "@rlhf/grpc-kit";
import { UsageError } from "../args";
import { cliCommand } from "../invocation";
import { SERVICES, entryPointOf } from "../services";
import { ChildFailedError, Supervisor, type ChildSpec } from "./supervisor";
import { ProgressRenderer, isTerminal, stateName } from "./progress";
import { startTraceCollector, type TraceCollector } from "./traces";

const { RunState } = ppoCoordinator;
type RunState = ppoCoordinator.RunState;
type CoordinatorClient = KitClient<ppoCoordinator.PpoCoordinatorServiceClient>;

/** The five services, by their `rlhf serve` names. */
export type ServiceName = "ppo-coordinator" | "policy" | "reward-model" | "reference-model" | "pretrain-mix";
/** Start order after the coordinator does not matter: the four model services start together. */
export const SERVICE_NAMES: readonly ServiceName[] = ["ppo-coordinator", "policy", "reward-model", "reference-model", "pretrain-mix"];
const MODEL_SERVICES: readonly ServiceName[] = ["policy", "reward-model", "reference-model", "pretrain-mix"];

/** Exit statuses of the commands. */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;

/** The built CLI entry point that the children run (`cli/dist/main.js`, also when this file runs from `src/` under tsx). */
export function cliEntryPoint(): string {
  return resolve(__dirname, "..", "..", "dist", "main.js");
}

/** Inputs of {@link serviceSpecs}. */
export interface WiringOptions {
  /** Port of each service on 127.0.0.1. */
  ports: Readonly<Record<ServiceName, number>>;
  /** RUNS_DIR of the coordinator (absolute). */
  runsDir: string;
  /**
   * Files and folders the run config names (`data.files.*`, `model.base_checkpoint`; absolute):
   * with the runs folder they make the services' roots (CHECKPOINT_ROOT, DATA_ROOT), the only
   * places a request may name. Default none.
   */
  dataPaths?: readonly string[];
  /** TOKENIZER of the policy and pretrain-mix: the run config's `model.tokenizer`. */
  tokenizer: string;
  /** RLHF_BACKEND of every service; unset = each picks the best it can load. */
  backend?: string;
  /** The CLI entry point the children run. Default {@link cliEntryPoint}. */
  cliMain?: string;
  /**
   * METRICS_PORT the user set: the coordinator's Prometheus endpoint; the next services in
   * {@link SERVICE_NAMES} order take the next ports (policy +1 ... pretrain-mix +4). Unset or 0:
   * every child gets METRICS_PORT=0 (no endpoint), so a laptop session never collides on 9464.
   */
  metricsPort?: number;
  /**
   * The session's token file ({@link createSessionToken}): every child accepts its token (all
   * roles) and sends it to the others. Unset: the children get no token of the session.
   */
  tokenFile?: string;
  /** Trace-export variables of every child ({@link startTraceCollector}: the CLI's loopback receiver). */
  traceEnv?: Readonly<Record<string, string>>;
  /**
   * The labeling service this session starts when a run needs it ({@link labelingSpec}): the
   * coordinator gets LABELING_ADDR=127.0.0.1:<grpc>. Unset: the coordinator keeps the
   * environment's LABELING_ADDR (a labeling service of its own), if any.
   */
  labelingPorts?: { grpc: number; http: number };
}

/** METRICS_PORT for `rlhf demo/run/resume`: 0 (off) when unset; else the first of five consecutive ports. */
export function metricsPortOf(env: Readonly<Record<string, string | undefined>>): number {
  const raw = env.METRICS_PORT?.trim();
  if (raw === undefined || raw === "") return 0;
  const max = 65535 - (SERVICE_NAMES.length - 1);
  if (!/^\d+$/.test(raw) || Number(raw) > max) {
    throw new UsageError(`METRICS_PORT must be an integer in [0, ${max}] (the five services take it and the next four ports), got "${env.METRICS_PORT}"`);
  }
  return Number(raw);
}

/**
 * The children: `node <cli main.js> serve <name> --port <p>` (exactly what `rlhf serve` runs)
 * with the addresses each service needs. Model services are ready when health answers at all
 * (NOT_SERVING until a model is loaded); pretrain-mix and the coordinator when SERVING.
 */
export function serviceSpecs(o: WiringOptions): Record<ServiceName, ChildSpec> {
  const main = o.cliMain ?? cliEntryPoint();
  const addr = (n: ServiceName) => `127.0.0.1:${o.ports[n]}`;
  const common: Record<string, string> = { GRPC_HOST: "127.0.0.1", ...(o.backend ? { RLHF_BACKEND: o.backend } : {}) };
  // The folders requests may name: the runs folder and the user's own files (':'-separated).
  const roots = [o.runsDir, ...(o.dataPaths ?? [])].join(delimiter);
  // The session's token, and only it: token variables the user's shell may hold are blanked.
  if (o.tokenFile) Object.assign(common, { RLHF_AUTH_TOKEN_FILE: o.tokenFile, ...Object.fromEntries(INHERITED_TOKEN_VARIABLES.map((v) => [v, ""])) });
  // Prometheus endpoints: off unless the user asked for them (then one port per service).
  const metricsPort = (name: ServiceName) => String(o.metricsPort ? o.metricsPort + SERVICE_NAMES.indexOf(name) : 0);
  const spec = (name: ServiceName, env: Record<string, string>, ready: ChildSpec["ready"]): ChildSpec => ({
    name,
    args: [main, "serve", name, "--port", String(o.ports[name])],
    port: o.ports[name],
    // OTEL_SERVICE_NAME per child: a name the user set for the CLI must not name all five.
    env: { ...common, METRICS_PORT: metricsPort(name), OTEL_SERVICE_NAME: name, ...o.traceEnv, ...env },
    ready,
  });
  return {
    "ppo-coordinator": spec(
      "ppo-coordinator",
      {
        POLICY_ADDR: addr("policy"),
        REWARD_MODEL_ADDR: addr("reward-model"),
        REFERENCE_MODEL_ADDR: addr("reference-model"),
        PRETRAIN_MIX_ADDR: addr("pretrain-mix"),
        RUNS_DIR: o.runsDir,
        DATA_ROOT: roots,
        ...(o.labelingPorts ? { LABELING_ADDR: `127.0.0.1:${o.labelingPorts.grpc}`, LABELING_TOKEN_FILE: "" } : {}),
      },
      "serving",
    ),
    policy: spec("policy", { REWARD_MODEL_ADDR: addr("reward-model"), TOKENIZER: o.tokenizer, CHECKPOINT_ROOT: roots }, "answer"),
    "reward-model": spec("reward-model", { POLICY_ADDR: addr("policy"), CHECKPOINT_ROOT: roots }, "answer"),
    "reference-model": spec("reference-model", { POLICY_ADDR: addr("policy"), CHECKPOINT_ROOT: roots }, "answer"),
    "pretrain-mix": spec("pretrain-mix", { POLICY_ADDR: addr("policy"), TOKENIZER: o.tokenizer, DATA_ROOT: roots }, "serving"),
  };
}

/**
 * The sixth child, for a run whose `rankings.source` is "labeling" (and no LABELING_ADDR of the
 * user's): `rlhf label serve` on the session's ports, its database and admin token in
 * `<runs>/labeling/` (so that a resumed run finds its batch), the session's token.
 */
export function labelingSpec(o: WiringOptions & { labelingPorts: { grpc: number; http: number } }): ChildSpec {
  const main = o.cliMain ?? cliEntryPoint();
  const env: Record<string, string> = { GRPC_HOST: "127.0.0.1", HTTP_HOST: "127.0.0.1", METRICS_PORT: "0", OTEL_SERVICE_NAME: "labeling", ...o.traceEnv };
  if (o.tokenFile) Object.assign(env, { RLHF_AUTH_TOKEN_FILE: o.tokenFile, ...Object.fromEntries(INHERITED_TOKEN_VARIABLES.map((v) => [v, ""])) });
  return {
    name: "labeling",
    args: [main, "label", "serve", "--port", String(o.labelingPorts.http), "--grpc-port", String(o.labelingPorts.grpc), "--data-dir", join(o.runsDir, "labeling"), "--no-seed"],
    port: o.labelingPorts.grpc,
    env,
    ready: "serving",
  };
}

/** Whether a resolved run config (JSON) ranks through the labeling service. */
export function ranksThroughLabeling(configJson: string | undefined): boolean {
  try {
    return (JSON.parse(configJson ?? "") as { rankings?: { source?: unknown } }).rankings?.source === "labeling";
  } catch {
    return false;
  }
}

/**
 * The files and folders a run config names (its {@link PATH_KEYS}, absolute in a config `rlhf run`
 * sends); none for a config that is not JSON or names none.
 */
export function dataPathsOf(configJson: string | undefined): string[] {
  let c: unknown;
  try {
    c = JSON.parse(configJson ?? "");
  } catch {
    return [];
  }
  const out: string[] = [];
  for (const key of PATH_KEYS) {
    let v: unknown = c;
    for (const part of key.split(".")) v = v && typeof v === "object" ? (v as Record<string, unknown>)[part] : undefined;
    if (typeof v === "string" && isAbsolute(v) && !v.includes(delimiter)) out.push(v);
  }
  return out;
}

/** The data paths of the run to resume: from the resolved config its run folder keeps (`config.json`). */
function dataPathsOfRun(runDir: string): string[] {
  try {
    return dataPathsOf(readFileSync(join(runDir, "config.json"), "utf8"));
  } catch {
    return [];
  }
}

/** The TLS variables of a session's children and of the CLI itself (see {@link tlsEnvOf}). */
const TLS_VARIABLES = ["GRPC_TLS_CERT_FILE", "GRPC_TLS_KEY_FILE", "GRPC_TLS_CLIENT_CA_FILE", "GRPC_TLS_CA_FILE", "GRPC_TLS_CLIENT_CERT_FILE", "GRPC_TLS_CLIENT_KEY_FILE", "GRPC_TLS_SERVER_NAME"] as const;

/** A session's throw-away CA and the one certificate its services and the CLI share. */
export interface SessionTls {
  dir: string;
  ca: string;
  cert: string;
  key: string;
  remove(): void;
}

/**
 * `--tls`: a throw-away CA and one certificate for 127.0.0.1 (server and client use), made with
 * openssl in a new folder `.session-tls-<pid>-<random>` (mode 0700) of `dir`; the services then
 * serve mutual TLS to each other and to the CLI. Removed when the session ends.
 */
export function createSessionTls(dir: string): SessionTls {
  const tlsDir = join(dir, `.session-tls-${process.pid}-${randomBytes(4).toString("hex")}`);
  mkdirSync(tlsDir, { mode: 0o700 });
  const f = (n: string) => join(tlsDir, n);
  const openssl = (...args: string[]) => execFileSync("openssl", args, { stdio: "pipe" });
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  try {
    openssl("req", "-x509", ...ec, "-keyout", f("ca.key"), "-out", f("ca.crt"), "-days", "7", "-subj", "/CN=rlhf-session-ca");
    openssl("req", ...ec, "-keyout", f("session.key"), "-out", f("session.csr"), "-subj", "/CN=rlhf-session");
    writeFileSync(f("session.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n");
    openssl("x509", "-req", "-in", f("session.csr"), "-CA", f("ca.crt"), "-CAkey", f("ca.key"), "-CAcreateserial", "-out", f("session.crt"), "-days", "7", "-extfile", f("session.ext"));
  } catch (e) {
    rmSync(tlsDir, { recursive: true, force: true });
    const err = e as NodeJS.ErrnoException & { stderr?: Buffer };
    throw new UsageError(`--tls: could not make a CA with openssl (${err.code === "ENOENT" ? "openssl is not installed" : String(err.stderr ?? err.message).trim().split("\n")[0]})`);
  }
  rmSync(f("ca.key")); // nothing else is ever signed with it
  return { dir: tlsDir, ca: f("ca.crt"), cert: f("session.crt"), key: f("session.key"), remove: () => rmSync(tlsDir, { recursive: true, force: true }) };
}

/**
 * The TLS variables of a session started here, for its children and the CLI alike: mutual TLS
 * with the session's certificate, or (without `--tls`) none, whatever the shell holds: its
 * GRPC_TLS_* are meant for a remote coordinator, not for services on loopback.
 */
export function tlsEnvOf(tls: SessionTls | undefined): Record<(typeof TLS_VARIABLES)[number], string> {
  const none = Object.fromEntries(TLS_VARIABLES.map((v) => [v, ""])) as Record<(typeof TLS_VARIABLES)[number], string>;
  if (!tls) return none;
  return { ...none, GRPC_TLS_CERT_FILE: tls.cert, GRPC_TLS_KEY_FILE: tls.key, GRPC_TLS_CLIENT_CA_FILE: tls.ca, GRPC_TLS_CA_FILE: tls.ca };
}

/** Token variables a child must not inherit from the CLI's environment when the session has its own token. */
const INHERITED_TOKEN_VARIABLES = ["RLHF_TOKEN", "RLHF_CLIENT_TOKEN_FILE", "RLHF_SERVICE_TOKEN_FILE", "RLHF_OPERATOR_TOKEN_FILE", "RLHF_VIEWER_TOKEN_FILE"];

/** A session's bearer token: its file (mode 0600), the token, and a function that deletes the file. */
export interface SessionToken {
  file: string;
  token: string;
  remove(): void;
}

/**
 * A fresh random token (256 bits, base64url) for the services of one session, written to a new
 * file `.session-token-<pid>-<random>` (mode 0600) in `dir` (the runs folder): the children read
 * it through RLHF_AUTH_TOKEN_FILE, so even the laptop demo's services answer no call without it.
 */
export function createSessionToken(dir: string): SessionToken {
  const token = randomBytes(32).toString("base64url");
  const file = join(dir, `.session-token-${process.pid}-${randomBytes(4).toString("hex")}`);
  writeFileSync(file, `${token}\n`, { mode: 0o600, flag: "wx" });
  chmodSync(file, 0o600); // whatever the umask
  return { file, token, remove: () => rmSync(file, { force: true }) };
}

/** `n` distinct free loopback ports. */
export async function freePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  for (let tries = 0; ports.size < n; tries++) {
    if (tries > 20 * n) throw new Error(`could not find ${n} distinct free ports`);
    ports.add(await freePort());
  }
  return [...ports];
}

/** The resolved config's `model.tokenizer`; "byte" (the presets' tokenizer) when it names none. */
export function tokenizerOf(configJson: string | undefined): string {
  try {
    const c = JSON.parse(configJson ?? "") as { model?: { tokenizer?: unknown } };
    if (typeof c.model?.tokenizer === "string" && c.model.tokenizer) return c.model.tokenizer;
  } catch {
    // fall through
  }
  return "byte";
}

/**
 * The service a FAILED run's error message names (the coordinator puts the failing service's
 * name in it), else the coordinator: its log is the one to show.
 */
export function serviceNamedIn(message: string): ServiceName {
  const m = message.replace(/_/g, "-");
  let best: { name: ServiceName; at: number } | undefined;
  for (const name of SERVICE_NAMES) {
    const at = m.indexOf(name);
    if (at >= 0 && (!best || at < best.at)) best = { name, at };
  }
  return best?.name ?? "ppo-coordinator";
}

/** A path for people: relative to the working directory when inside it. */
export function displayPath(p: string): string {
  const rel = relative(process.cwd(), p);
  return rel === "" ? "." : !rel.startsWith("..") && !isAbsolute(rel) ? rel : p;
}

/** What the session does once the services are up. */
export type SessionAction =
  | {
      kind: "start";
      /** The run config as a JSON object text (StartRunRequest.config_json). */
      configJson: string;
      /** Client-chosen run id; empty or undefined: the coordinator picks one. */
      runId?: string;
      displayName: string;
      /** Where the config came from, for error messages ("the tiny demo config", "my.yaml"). */
      source: string;
    }
  | {
      kind: "resume";
      runId: string;
      /** The run folder the user named. */
      runDir: string;
    };

/** Options of {@link runSession}. */
export interface SessionOptions {
  action: SessionAction;
  /** RUNS_DIR (absolute): runs and the services' logs go here; created. */
  runsDir: string;
  /** RLHF_BACKEND of every service. */
  backend?: string;
  /** Where progress goes. Default process.stdout (TTY redraws when it is a terminal). */
  out?: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Most time for a service to become ready. Default 180 s. */
  readyTimeoutMs?: number;
  /** After SIGTERM, how long the children may take before SIGKILL. Default 20 s. */
  stopGraceMs?: number;
  /** The CLI entry point the children run. Default {@link cliEntryPoint}. */
  cliMain?: string;
  /** METRICS_PORT base of the children ({@link WiringOptions.metricsPort}); default 0 (off). */
  metricsPort?: number;
  /**
   * A coordinator that already runs (`host:port`, e.g. a Kubernetes one behind `kubectl
   * port-forward`): no service is started here, the run goes to it and its own model services.
   * Run folders (and data paths in the config) are then on the coordinator's side.
   */
  coordinator?: string;
  /** `--tls`: the services serve mutual TLS with a throw-away CA ({@link createSessionTls}). */
  tls?: boolean;
}

/** The session was interrupted by a signal; `exitCode` is what the CLI exits with. */
class Interrupted extends Error {
  constructor(readonly exitCode: number) {
    super("interrupted");
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Checks that every service and the CLI itself are built, with one clear line if not. */
export function checkBuilt(cliMain = cliEntryPoint()): void {
  if (!existsSync(cliMain)) throw new Error(`${cliMain} is missing: run \`pnpm build\` first`);
  for (const s of SERVICES) {
    if (!s.pkg) throw new Error(`the ${s.name} service is not built yet (${s.builtBy ?? "no package"}): demo, run and resume need all five services`);
    let entry: string;
    try {
      entry = entryPointOf(s);
    } catch {
      throw new Error(`${s.pkg} is not installed or not built: run \`pnpm install\` and \`pnpm build\` first`);
    }
    if (!existsSync(entry)) throw new Error(`${entry} is missing: run \`pnpm build\` first`);
  }
}

/**
 * Runs one session (see the module comment) and returns the exit status (call
 * {@link checkBuilt} first for a clear line when something is not built): 0 when the run
 * SUCCEEDED, 1 when it FAILED or a service died, 130 after Ctrl-C. Throws UsageError (status 2)
 * for a config the coordinator refuses or a run folder it does not know.
 */
export async function runSession(o: SessionOptions): Promise<number> {
  const out = o.out ?? process.stdout;
  const cliMain = o.cliMain ?? cliEntryPoint();
  if (!o.coordinator) mkdirSync(o.runsDir, { recursive: true });
  const tty = Boolean(out.isTTY);
  const renderer = new ProgressRenderer({ tty, columns: out.columns || 120 });
  const write = (s: string) => {
    if (s) out.write(s);
  };
  const note = (text: string) => write(renderer.note(text, Date.now()));

  const sup = new Supervisor({ logDir: o.runsDir, graceMs: o.stopGraceMs });
  const readyTimeoutMs = o.readyTimeoutMs ?? 180_000;
  const untilChildFails = <T>(p: Promise<T>): Promise<T> =>
    Promise.race([
      p,
      sup.failed.then((e) => {
        throw e;
      }),
    ]);

  // Signals. `phase` says what the first Ctrl-C means.
  let phase: "startup" | "starting-run" | "running" = "startup";
  let runId = o.action.kind === "resume" ? o.action.runId : "";
  let runDir = o.action.kind === "resume" ? o.action.runDir : "";
  let cancelWanted = false;
  let interrupts = 0;
  const abort = new AbortController();
  let client: CoordinatorClient | undefined;
  let validator: CoordinatorClient | undefined;
  const requestCancel = () => {
    note(`Ctrl-C: cancelling run ${runId}; it stays resumable (Ctrl-C again to stop at once)`);
    client?.unary("cancelRun", { runId }, { deadlineMs: 30_000 }).catch((err: unknown) => note(`CancelRun failed: ${(err as Error).message}`));
  };
  const onSigint = () => {
    interrupts++;
    if (interrupts === 1) {
      cancelWanted = true;
      if (phase === "running") requestCancel();
      else if (phase === "startup") {
        note("Ctrl-C: stopping the services");
        abort.abort(new Interrupted(EXIT.interrupted));
      } // starting-run: the cancel follows as soon as StartRun/ResumeRun answers
      return;
    }
    note("Ctrl-C again: stopping the services now");
    sup.killNow();
    abort.abort(new Interrupted(EXIT.interrupted));
  };
  const onTerm = (sig: NodeJS.Signals) => {
    note(`${sig}: stopping the services`);
    abort.abort(new Interrupted(sig === "SIGHUP" ? 129 : 143));
  };
  process.on("SIGINT", onSigint);
  process.on("SIGTERM", onTerm);
  process.on("SIGHUP", onTerm);
  const aborted = new Promise<never>((_, reject) => abort.signal.addEventListener("abort", () => reject(abort.signal.reason), { once: true }));
  aborted.catch(() => undefined);
  const orAbort = <T>(p: Promise<T>): Promise<T> => Promise.race([p, aborted]);
  let ticker: NodeJS.Timeout | undefined;
  let traces: TraceCollector | undefined;
  let session: SessionToken | undefined;
  let sessionTls: SessionTls | undefined;
  const savedEnv = new Map<string, string | undefined>();

  try {
    // 1. The coordinator, then the resolved config (for the tokenizer and early config errors).
    const t0 = Date.now();
    let specs: ((tokenizer: string) => Record<ServiceName, ChildSpec>) | undefined;
    let wiring: WiringOptions | undefined;
    let labelingPorts: { grpc: number; http: number } | undefined;
    let coordinatorAddr: string;
    abort.signal.throwIfAborted();
    if (o.coordinator) {
      // A running coordinator (a cluster's): it has its own model services; nothing starts here.
      coordinatorAddr = o.coordinator;
      note(`using the coordinator at ${coordinatorAddr}`);
      await orAbort(waitForServing(coordinatorAddr, Math.min(readyTimeoutMs, 30_000)).catch((e: Error) => Promise.reject(new Error(`the coordinator at ${coordinatorAddr} does not answer: ${e.message}`))));
    } else {
      const portList = await freePorts(SERVICE_NAMES.length + 2);
      const ports = Object.fromEntries(SERVICE_NAMES.map((n, i) => [n, portList[i]])) as Record<ServiceName, number>;
      // The labeling service's ports, used when the run needs it (the user's LABELING_ADDR wins).
      labelingPorts = process.env.LABELING_ADDR?.trim() ? undefined : { grpc: portList[SERVICE_NAMES.length], http: portList[SERVICE_NAMES.length + 1] };
      // Traces: the user's OTLP endpoint, else this process collects them into the run folders.
      traces = await startTraceCollector(o.runsDir, process.env, note);
      const traceEnv = traces.env;
      const dataPaths = o.action.kind === "start" ? dataPathsOf(o.action.configJson) : dataPathsOfRun(o.action.runDir);
      session = createSessionToken(o.runsDir);
      // TLS of the children and of this process's own calls (clients, health waits), for the session.
      if (o.tls) sessionTls = createSessionTls(o.runsDir);
      const tlsEnv = tlsEnvOf(sessionTls);
      for (const [k, v] of Object.entries(tlsEnv)) {
        savedEnv.set(k, process.env[k]);
        if (v) process.env[k] = v;
        else delete process.env[k];
      }
      const tokenFile = session.file;
      wiring = { ports, runsDir: o.runsDir, dataPaths, tokenFile, tokenizer: "byte", backend: o.backend, cliMain, metricsPort: o.metricsPort, traceEnv, labelingPorts };
      specs = (tokenizer: string) => serviceSpecs({ ports, runsDir: o.runsDir, dataPaths, tokenFile, tokenizer, backend: o.backend, cliMain, metricsPort: o.metricsPort, traceEnv, labelingPorts });
      note(`starting the services on 127.0.0.1 (logs: ${displayPath(o.runsDir)}/<service>.log; traces: ${traces.destination})`);
      sup.start(specs("byte")["ppo-coordinator"]);
      await orAbort(sup.waitReady(["ppo-coordinator"], { timeoutMs: readyTimeoutMs, signal: abort.signal, ready: "answer" }));
      coordinatorAddr = sup.address("ppo-coordinator");
    }
    // The session's own token for services started here; the environment's (RLHF_TOKEN, ...) for a running coordinator.
    const sessionToken = session?.token;
    const token = sessionToken ? () => sessionToken : undefined;
    client = createClient(ppoCoordinator.PpoCoordinatorServiceClient, coordinatorAddr, { deadlineMs: 60_000, idempotent: ["getRun", "cancelRun", "listRuns"], token });
    // validate_only creates nothing, so this client may retry StartRun.
    validator = createClient(ppoCoordinator.PpoCoordinatorServiceClient, coordinatorAddr, { deadlineMs: 60_000, idempotent: ["startRun"], token });
    let tokenizer: string;
    let replayUpTo = 0;
    let resolvedConfig: string | undefined;
    if (o.action.kind === "start") {
      const resolved = await orAbort(untilChildFails(validateConfig(validator, o.action)));
      tokenizer = tokenizerOf(resolved);
      renderer.useRunConfig(resolved);
      resolvedConfig = resolved;
    } else {
      const run = await orAbort(untilChildFails(runToResume(client, o.action)));
      tokenizer = tokenizerOf(run.configJson);
      renderer.useRunConfig(run.configJson);
      replayUpTo = run.lastEventSequence;
      resolvedConfig = run.configJson;
    }
    // The labeling service, sixth child, for a run that ranks through it (rankings.source "labeling").
    if (wiring && labelingPorts && ranksThroughLabeling(resolvedConfig)) {
      sup.start(labelingSpec({ ...wiring, labelingPorts }));
      await orAbort(sup.waitReady(["labeling"], { timeoutMs: readyTimeoutMs, signal: abort.signal }));
      const adminToken = join(o.runsDir, "labeling", "admin-token");
      note(`labeling: web UI http://127.0.0.1:${labelingPorts.http}/ (admin token in ${displayPath(adminToken)}); the rankings stage waits for labelers there`);
      note(`  simulated labelers: rlhf label simulate --url http://127.0.0.1:${labelingPorts.http}/ --admin-token-file ${displayPath(adminToken)}`);
    }

    // 2. The model services (a running coordinator has its own).
    if (specs) {
      const all = specs(tokenizer);
      for (const name of MODEL_SERVICES) sup.start(all[name]);
      await orAbort(sup.waitReady(SERVICE_NAMES, { timeoutMs: readyTimeoutMs, signal: abort.signal }));
      note(`services ready in ${((Date.now() - t0) / 1000).toFixed(1)} s (tokenizer ${tokenizer}${o.backend ? `, backend ${o.backend}` : ""})`);
    }
    if (specs && o.metricsPort) note(`Prometheus metrics: http://127.0.0.1:${o.metricsPort}/metrics (${SERVICE_NAMES[0]}) to :${o.metricsPort + SERVICE_NAMES.length - 1} (${SERVICE_NAMES.at(-1)})`);

    // 3. The run.
    phase = "starting-run";
    let run: ppoCoordinator.Run | undefined;
    if (o.action.kind === "start") {
      const a = o.action;
      const req = { configJson: a.configJson, runId: a.runId ?? "", displayName: a.displayName, validateOnly: false };
      run = (await orAbort(untilChildFails(asUsageError(client.unary("startRun", req), a.source)))).run;
    } else {
      run = (await orAbort(untilChildFails(asUsageError(client.unary("resumeRun", { runId: o.action.runId }), o.action.runDir)))).run;
    }
    if (!run) throw new Error("the coordinator answered without a run");
    runId = run.id;
    runDir = run.runDir || runDir;
    phase = "running";
    note(`run ${runId} ${o.action.kind === "start" ? "started" : "resumed"}: ${o.coordinator ? `${runDir} (on the coordinator's volume)` : displayPath(runDir)}`);
    if (cancelWanted) requestCancel();

    // 4. Follow it.
    // Every second: what throttling held back, and a running stage's clock between events.
    ticker = setInterval(() => write(renderer.tick(Date.now())), 1000);
    let state = await orAbort(untilChildFails(follow(client, runId, renderer, replayUpTo, abort.signal, write)));
    clearInterval(ticker);
    ticker = undefined;
    let final: ppoCoordinator.Run | undefined;
    try {
      final = (await client.unary("getRun", { runId }, { deadlineMs: 10_000 })).run;
    } catch {
      // the summary works from the events alone
    }
    if (state === undefined) state = final?.state ?? RunState.RUN_STATE_UNSPECIFIED;
    write(renderer.summary({ runId, runDir: final?.runDir || runDir, state, errorMessage: final?.errorMessage, metrics: final?.lastMetrics }, Date.now()));
    if (state === RunState.RUN_STATE_SUCCEEDED) return EXIT.ok;
    if (state === RunState.RUN_STATE_FAILED) {
      const failing = serviceNamedIn(renderer.errorMessage || final?.errorMessage || "");
      const tail = specs ? sup.logTail(failing) : "";
      if (tail) write(`last lines of ${displayPath(sup.logFile(failing))}:\n${indent(tail)}\n`);
    }
    write(resumeHint(runDir, o.backend, o.coordinator, runId));
    return state === RunState.RUN_STATE_CANCELLED && cancelWanted ? EXIT.interrupted : EXIT.failed;
  } catch (err) {
    if (ticker) clearInterval(ticker);
    renderer.release();
    if (err instanceof Interrupted) {
      if (runId && phase === "running") write(resumeHint(runDir, o.backend, o.coordinator, runId));
      return err.exitCode;
    }
    if (err instanceof ChildFailedError) {
      write(`\n${err.message}\n`);
      if (phase === "running") write(resumeHint(runDir, o.backend, o.coordinator, runId));
      return EXIT.failed;
    }
    throw err;
  } finally {
    if (ticker) clearInterval(ticker);
    abort.abort(new Interrupted(EXIT.interrupted)); // ends any watch still open
    client?.close();
    validator?.close();
    await sup.stop();
    session?.remove(); // a token of a session that ended opens nothing, but leaves no file either
    sessionTls?.remove();
    for (const [k, v] of savedEnv) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    for (const name of sup.killedAfterGrace) write(`${name} did not stop within the grace period and was killed\n`);
    // The children flushed their spans on SIGTERM: now the receiver can stop.
    const st = await traces?.close().catch(() => undefined);
    if (st && st.spans > 0 && runDir) write(`traces: ${st.spans} spans in ${displayPath(runDir)}/traces.jsonl (OTLP JSON)${st.dropped || st.failed ? `; ${st.dropped} lines dropped (queue full), ${st.failed} failed writes` : ""}\n`);
    process.removeListener("SIGINT", onSigint);
    process.removeListener("SIGTERM", onTerm);
    process.removeListener("SIGHUP", onTerm);
  }
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => "  " + l)
    .join("\n");
}

/** The command that resumes the run, as the user started this one (`rlhf` or `pnpm rlhf`). */
function resumeHint(runDir: string, backend: string | undefined, coordinator?: string, runId?: string): string {
  if (coordinator) return runId ? `resume it with: ${cliCommand()} resume ${runId} --coordinator ${coordinator}\n` : "";
  if (!runDir) return "";
  return `resume it with: ${cliCommand()} resume ${displayPath(runDir)}${backend ? ` --backend ${backend}` : ""}\n`;
}

/** Codes that mean the user's input is wrong (a bad config, a taken run id, a run that cannot be resumed). */
const USAGE_CODES: ReadonlySet<number> = new Set([grpc.status.INVALID_ARGUMENT, grpc.status.ALREADY_EXISTS, grpc.status.FAILED_PRECONDITION]);

/** The call's result; its USAGE_CODES errors as UsageError `<what>: <details>` (exit status 2). */
async function asUsageError<T>(call: Promise<T>, what: string): Promise<T> {
  try {
    return await call;
  } catch (err) {
    const e = err as Partial<grpc.ServiceError>;
    if (e.code !== undefined && USAGE_CODES.has(e.code)) throw new UsageError(`${what}: ${e.details || e.message}`);
    throw err;
  }
}

/** StartRun with validate_only: the resolved config, or UsageError naming the config's problem. */
async function validateConfig(client: CoordinatorClient, a: Extract<SessionAction, { kind: "start" }>): Promise<string> {
  const res = await asUsageError(client.unary("startRun", { configJson: a.configJson, runId: a.runId ?? "", displayName: a.displayName, validateOnly: true }), a.source);
  return res.run?.configJson ?? "";
}

/** GetRun of the run to resume, or UsageError when the coordinator does not know it or it cannot be resumed. */
async function runToResume(client: CoordinatorClient, a: Extract<SessionAction, { kind: "resume" }>): Promise<ppoCoordinator.Run> {
  let run: ppoCoordinator.Run | undefined;
  try {
    run = (await client.unary("getRun", { runId: a.runId })).run;
  } catch (err) {
    const e = err as grpc.ServiceError;
    if (e.code === grpc.status.NOT_FOUND || e.code === grpc.status.INVALID_ARGUMENT) throw new UsageError(`${a.runDir} is not a run folder: ${e.details || e.message}`);
    throw err;
  }
  if (!run) throw new Error("the coordinator answered GetRun without a run");
  if (run.state !== RunState.RUN_STATE_FAILED && run.state !== RunState.RUN_STATE_CANCELLED) {
    throw new UsageError(`run ${run.id} is ${stateName(run.state)}: only a FAILED or CANCELLED run can be resumed`);
  }
  return run;
}

/** Codes after which a broken WatchRun stream is opened again (from the last event seen). */
const REWATCH_CODES: ReadonlySet<number> = new Set([grpc.status.UNAVAILABLE, grpc.status.DEADLINE_EXCEEDED, grpc.status.INTERNAL, grpc.status.UNKNOWN]);

/**
 * Follows WatchRun until the run reaches a terminal state and returns it (undefined if the
 * stream ended without one and GetRun could not tell). Events up to `replayUpTo` (the history
 * of a resumed run) only feed the renderer's state; the picture is drawn once they are in.
 */
async function follow(
  client: CoordinatorClient,
  runId: string,
  renderer: ProgressRenderer,
  replayUpTo: number,
  signal: AbortSignal,
  write: (s: string) => void,
): Promise<RunState | undefined> {
  let last = 0;
  let failures = 0;
  let replayShown = replayUpTo === 0;
  const showReplay = () => {
    if (!replayShown) {
      replayShown = true;
      write(renderer.snapshot(Date.now()));
    }
  };
  for (;;) {
    const stream = client.serverStream("watchRun", { runId, afterSequence: last }, { deadlineMs: 7 * 24 * 3600_000, signal });
    // A cancel (abort) after the loop let go of the stream must not raise an unhandled 'error'.
    stream.on("error", () => undefined);
    try {
      for await (const msg of stream as AsyncIterable<ppoCoordinator.WatchRunResponse>) {
        const ev = msg.event;
        if (!ev || ev.sequence <= last) continue;
        last = ev.sequence;
        failures = 0;
        if (ev.sequence <= replayUpTo) {
          renderer.replay(ev);
          if (ev.sequence === replayUpTo) showReplay();
          continue;
        }
        showReplay();
        write(renderer.push(ev, Date.now()));
        if (ev.payload?.$case === "stateChanged" && isTerminal(ev.payload.stateChanged.toState)) return ev.payload.stateChanged.toState;
      }
      // The stream ended without a terminal event of ours: ask, and watch on if it still runs.
      const run = (await client.unary("getRun", { runId }, { signal })).run;
      if (run && isTerminal(run.state) && run.lastEventSequence <= last) return run.state;
    } catch (err) {
      if (signal.aborted) throw signal.reason;
      const code = (err as Partial<grpc.ServiceError>).code;
      if (code === undefined || !REWATCH_CODES.has(code) || ++failures > 5) throw err;
    }
    await sleep(Math.min(5000, 500 * 2 ** failures));
  }
}
