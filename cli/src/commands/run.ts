/**
 * `rlhf demo`, `rlhf run <config>` and `rlhf resume <run-folder>`: the whole recipe with the five
 * services as child processes of the CLI (see ../run/session.ts). This file turns arguments into
 * a session; every mistake in them is a UsageError (exit status 2) before anything starts.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { basename, dirname, extname, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { MAX_CONFIG_DEPTH, nestedDeeperThan, resolveConfigPaths } from "@rlhf/run-config";
import { type ParsedArgs, UsageError, allowFlags, flagString } from "../args";
import { RUN_ID, resolveRunFolder } from "../run-folder";
import type { SessionAction, SessionOptions } from "../run/session";

const COMMON_FLAGS = `  --runs-dir DIR    where runs and the services' logs (<service>.log) go (default ./runs); a
                    pretrained base model is cached in <runs dir>/pretrain-cache/ by its settings
                    and reused by later runs with the same ones
  --no-cache        pretrain anew even when the cache has this base model (the new one replaces it)
  --run-id ID       name the run: 1-64 characters of a-z, 0-9 and - (default: the coordinator picks)
  --backend NAME    RLHF_BACKEND of every service: torch, wasm, cpu, tensorflow or tensorflow-gpu
                    (default: each service takes the best one it can load: torch where its
                    addon is built, else wasm; RLHF_TORCH_THREADS sets torch's threads, default 1;
                    RLHF_TORCH_KERNELS=native lets torch use this CPU's own kernels instead of the
                    portable ones that give the same figures on every x86-64 machine with AVX2)
  --tls             the services serve mutual TLS to each other and to this command, with a
                    throw-away CA made by openssl for this session (they always check a fresh
                    random token of the session: docs/security.md)
  --coordinator ADDR  start no services: send the run to a coordinator that runs already
                    (host:port, e.g. a cluster's behind kubectl port-forward) and follow it;
                    its run folders, and the paths a config names, are on the coordinator's side`;

const AFTER = `Progress is redrawn in place on a terminal, one line per change otherwise. At the end it
prints the run folder and its report.html / report.json. Ctrl-C cancels the run (it stays
resumable: rlhf resume <run folder or run id>); a second Ctrl-C stops the services at once.
The services serve no Prometheus metrics unless METRICS_PORT=N is set: then /metrics on
127.0.0.1 ports N (ppo-coordinator), N+1 (policy), N+2 (reward-model), N+3 (reference-model)
and N+4 (pretrain-mix).
Exit status: 0 the run succeeded, 1 it failed, 2 bad arguments or config, 130 interrupted.`;

export const DEMO_USAGE = `rlhf demo [--tiny] [--runs-dir DIR] [--run-id ID] [--backend NAME] [--no-cache] [--tls] [--coordinator ADDR]
  Runs the whole InstructGPT recipe (pretrain, SFT, rankings, reward model, PPO-ptx and plain
  PPO, evaluation) on built-in data with the five services as child processes on free
  loopback ports: the demo config, about 15 minutes on 2 cores (12 once its base model is cached).
  --tiny            a smoke run of about a minute instead (nothing learns much)
${COMMON_FLAGS}
${AFTER}`;

export const RUN_USAGE = `rlhf run <config.json|config.yaml> [--runs-dir DIR] [--run-id ID] [--backend NAME] [--no-cache] [--tls] [--coordinator ADDR]
  Like rlhf demo, with your run config (JSON, or YAML for .yaml/.yml files; omitted keys take
  their defaults, unknown keys are errors). Relative paths in it (model.base_checkpoint,
  data.files.*) are taken from the config file's folder. Your data files are checked before the
  model services start: a bad line is reported as file:line: field (exit status 2).
  Example: rlhf run examples/user-data/run.yaml
${COMMON_FLAGS}
${AFTER}`;

export const RESUME_USAGE = `rlhf resume <run-folder|run-id> [--runs-dir DIR] [--backend NAME] [--tls]
rlhf resume <run-id> --coordinator ADDR
  Continues a FAILED or CANCELLED run where it stopped, from its last checkpoint: starts the
  services with the folder's parent as the runs folder and resumes the run named by the
  folder (with --coordinator: asks that coordinator to resume its run <run-id>). A run id is
  looked up in --runs-dir (default ./runs). Flags as for rlhf demo.
${AFTER}`;

/** The compute backends `RLHF_BACKEND` accepts (libs/compute's BACKEND_ORDER; not imported: it loads TensorFlow.js). */
const BACKENDS = ["tensorflow-gpu", "tensorflow", "torch", "wasm", "cpu"] as const;

function noExtraPositionals(args: ParsedArgs, n: number, command: string): void {
  if (args.positional.length > n) throw new UsageError(`${command}: unexpected argument "${args.positional[n]}"`);
}

function backendFlag(args: ParsedArgs): string | undefined {
  const b = flagString(args, "backend");
  if (b !== undefined && !(BACKENDS as readonly string[]).includes(b)) throw new UsageError(`--backend must be one of ${BACKENDS.join(", ")}, got "${b}"`);
  return b;
}

function runIdFlag(args: ParsedArgs): string | undefined {
  const id = flagString(args, "run-id");
  if (id !== undefined && !RUN_ID.test(id)) throw new UsageError(`--run-id must be 1-64 characters of a-z, 0-9 and -, got "${id}"`);
  return id;
}

function runsDirFlag(args: ParsedArgs): string {
  const dir = resolve(flagString(args, "runs-dir") ?? "runs");
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new UsageError(`--runs-dir ${dir} is not a folder`);
  return dir;
}

/** `--no-cache`: the config (JSON text) with `pretrain.cache` false. */
function noCache(args: ParsedArgs, configJson: string): string {
  if (!args.flags.has("no-cache")) return configJson;
  if (typeof args.flags.get("no-cache") === "string") throw new UsageError("--no-cache takes no value");
  const c = JSON.parse(configJson) as { pretrain?: Record<string, unknown> };
  return JSON.stringify({ ...c, pretrain: { ...(typeof c.pretrain === "object" && c.pretrain ? c.pretrain : {}), cache: false } });
}

/** `rlhf demo` arguments as session options. */
export function demoOptions(args: ParsedArgs): SessionOptions {
  allowFlags(args, ["tiny", "runs-dir", "run-id", "backend", "coordinator", "no-cache", "tls"], "rlhf demo");
  noExtraPositionals(args, 1, "rlhf demo");
  if (typeof args.flags.get("tiny") === "string") throw new UsageError("--tiny takes no value");
  const preset = args.flags.has("tiny") ? "tiny" : "default";
  const action: SessionAction = {
    kind: "start",
    configJson: noCache(args, JSON.stringify({ preset })),
    runId: runIdFlag(args),
    displayName: `rlhf demo (${preset})`,
    source: `the ${preset} demo config`,
  };
  return { action, runsDir: runsDirFlag(args), backend: backendFlag(args), ...coordinatorFlag(args), ...tlsFlag(args) };
}

/**
 * Reads a run config file (YAML for .yaml/.yml, JSON otherwise) as a JSON object text, its
 * relative paths made absolute from the file's folder (the coordinator takes absolute paths only).
 */
export function readConfigFile(path: string): string {
  if (!existsSync(path)) throw new UsageError(`config file ${path} does not exist`);
  if (!statSync(path).isFile()) throw new UsageError(`config file ${path} is not a file`);
  const text = readFileSync(path, "utf8");
  const yaml = [".yaml", ".yml"].includes(extname(path).toLowerCase());
  let value: unknown;
  try {
    if (yaml) {
      value = parseYaml(text, { prettyErrors: true });
    } else value = JSON.parse(text);
  } catch (e) {
    // The YAML parser recurses: a document thousands of levels deep overflows its stack (a
    // RangeError, which the parser reports as a YAMLParseError with the same message).
    if (/Maximum call stack size exceeded/.test((e as Error).message)) throw new UsageError(`${path}: is nested too deeply to read (a run config may nest at most ${MAX_CONFIG_DEPTH} levels)`);
    throw new UsageError(`${path}: invalid ${yaml ? "YAML" : "JSON"}: ${(e as Error).message.split("\n")[0]}`);
  }
  if (nestedDeeperThan(value, MAX_CONFIG_DEPTH)) throw new UsageError(`${path}: is nested more than ${MAX_CONFIG_DEPTH} levels deep (a run config nests a few levels)`);
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new UsageError(`${path}: a run config must be an object (a mapping of keys), got ${Array.isArray(value) ? "a list" : value === null ? "nothing" : typeof value}`);
  const json = JSON.stringify(resolveConfigPaths(value, dirname(resolve(path))));
  if (Buffer.byteLength(json) > 1024 * 1024) throw new UsageError(`${path}: the config is larger than 1 MiB as JSON`);
  return json;
}

/** `rlhf run <config>` arguments as session options. */
export function runOptions(args: ParsedArgs): SessionOptions {
  allowFlags(args, ["runs-dir", "run-id", "backend", "coordinator", "no-cache", "tls"], "rlhf run");
  const file = args.positional[1];
  if (!file) throw new UsageError(`which config file?\n${RUN_USAGE}`);
  noExtraPositionals(args, 2, "rlhf run");
  const path = resolve(file);
  const action: SessionAction = { kind: "start", configJson: noCache(args, readConfigFile(path)), runId: runIdFlag(args), displayName: basename(path), source: file };
  return { action, runsDir: runsDirFlag(args), backend: backendFlag(args), ...coordinatorFlag(args), ...tlsFlag(args) };
}

/** `rlhf resume <run-folder|run-id>` arguments as session options. */
export function resumeOptions(args: ParsedArgs): SessionOptions {
  allowFlags(args, ["runs-dir", "backend", "coordinator", "tls"], "rlhf resume");
  const folder = args.positional[1];
  if (!folder) throw new UsageError(`which run folder?\n${RESUME_USAGE}`);
  noExtraPositionals(args, 2, "rlhf resume");
  const remote = coordinatorFlag(args);
  if (remote.coordinator) {
    // The run folder is on the coordinator's side: take the run id (or a path ending in it).
    const runId = basename(folder);
    if (!RUN_ID.test(runId)) throw new UsageError(`"${folder}" is not a run id (1-64 characters of a-z, 0-9 and -)`);
    return { action: { kind: "resume", runId, runDir: "" }, runsDir: resolve("runs"), ...remote };
  }
  // The services log into the run folder's parent: only a real run folder will do.
  const { runDir, runId } = resolveRunFolder(folder, runsDirFlag(args), "rlhf resume");
  return { action: { kind: "resume", runId, runDir }, runsDir: dirname(runDir), backend: backendFlag(args), ...tlsFlag(args) };
}

/**
 * `--coordinator ADDR`: a running coordinator to use instead of starting the services; the flags
 * that only concern services started here are refused with it.
 */
export function coordinatorFlag(args: ParsedArgs): { coordinator?: string } {
  const addr = flagString(args, "coordinator");
  if (addr === undefined) return {};
  if (!/^(dns:\/\/\/)?(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(addr)) throw new UsageError(`--coordinator must look like host:port (e.g. 127.0.0.1:50050), got "${addr}"`);
  for (const f of ["backend", "runs-dir", "tls"]) {
    if (args.flags.has(f)) throw new UsageError(`--${f} concerns the services this command starts; with --coordinator it starts none (the cluster's services have their own settings)`);
  }
  return { coordinator: addr };
}

/** `--tls` (no value): the session's services serve mutual TLS. */
function tlsFlag(args: ParsedArgs): { tls?: true } {
  if (!args.flags.has("tls")) return {};
  if (args.flags.get("tls") !== true) throw new UsageError("--tls takes no value");
  return { tls: true };
}

async function session(o: SessionOptions): Promise<void> {
  // Loaded only now: it pulls in gRPC.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { runSession, checkBuilt, metricsPortOf } = require("../run/session") as typeof import("../run/session");
  if (!o.coordinator) checkBuilt();
  process.exitCode = await runSession({ metricsPort: metricsPortOf(process.env), ...o });
}

/** `rlhf demo`. */
export function demo(args: ParsedArgs): Promise<void> {
  return session(demoOptions(args));
}

/** `rlhf run <config>`. */
export function run(args: ParsedArgs): Promise<void> {
  return session(runOptions(args));
}

/** `rlhf resume <run-folder>`. */
export function resume(args: ParsedArgs): Promise<void> {
  return session(resumeOptions(args));
}
