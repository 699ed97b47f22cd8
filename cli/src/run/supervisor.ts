/**
 * Child processes of the CLI that serve gRPC on loopback ports: start them with their output
 * appended to `<logDir>/<name>.log`, wait until they answer grpc.health.v1, notice one that dies,
 * and stop them all (SIGTERM, then SIGKILL after a grace period).
 *
 * Children get their own process group (`detached`), so that Ctrl-C in a terminal reaches the
 * CLI only: the CLI decides how the services stop (cancel the run first, then SIGTERM). If the
 * CLI exits without stopping them, an exit hook SIGKILLs whatever is left; if it is killed
 * outright (no hook runs), each child's standard input, a pipe only the CLI holds, closes and
 * the child stops itself (RLHF_EXIT_WITH_PARENT=1, see parent-watch.ts).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, fstatSync, mkdirSync, openSync, readSync } from "node:fs";
import { join } from "node:path";
import { checkHealth } from "@rlhf/grpc-kit";
import { EXIT_WITH_PARENT_ENV } from "./parent-watch";

/** One child to start. */
export interface ChildSpec {
  /** Name in messages; its log is `<logDir>/<name>.log`. */
  name: string;
  /** Arguments after `process.execPath` (node). */
  args: readonly string[];
  /** Loopback port the child serves gRPC on (health is asked at 127.0.0.1:port). */
  port: number;
  /** Added to (and overriding) this process's environment. */
  env?: Readonly<Record<string, string>>;
  /**
   * When the child counts as ready: "answer" = any health answer (a model service answers
   * NOT_SERVING until it has a model), "serving" = SERVING. Default "answer".
   */
  ready?: "answer" | "serving";
}

/** Options of {@link Supervisor}. */
export interface SupervisorOptions {
  /** Folder of the log files (created). */
  logDir: string;
  /** After SIGTERM, how long a child may take to exit before SIGKILL. Default 20,000 ms (services drain for up to 10 s). */
  graceMs?: number;
  /** Log lines quoted when a child fails. Default 20. */
  tailLines?: number;
  /** Time between two health checks while waiting. Default 200 ms. */
  pollMs?: number;
}

/** Options of {@link Supervisor.waitReady}. */
export interface WaitOptions {
  /** Default 180,000 ms. */
  timeoutMs?: number;
  /** Overrides each child's own {@link ChildSpec.ready}. */
  ready?: ChildSpec["ready"];
  signal?: AbortSignal;
}

/** How a child ended. */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Why it could not be spawned, if so. */
  error?: string;
}

/** A child that died, or never became ready; the message quotes the end of its log. */
export class ChildFailedError extends Error {
  constructor(
    /** The child's name. */
    readonly child: string,
    /** What happened, without the log ("exited with code 1 before it was ready"). */
    readonly reason: string,
    /** Its log file. */
    readonly logFile: string,
    /** The last lines it wrote in this session ("" if none). */
    readonly tail: string,
  ) {
    super(`${child} ${reason} (log: ${logFile})${tail ? `; its last lines:\n${indent(tail)}` : "; it wrote nothing"}`);
  }
}

interface Entry {
  spec: ChildSpec;
  child: ChildProcess;
  logFile: string;
  /** Size of the log file when this child started: its own lines come after. */
  logOffset: number;
  exited: Promise<ChildExit>;
  exit?: ChildExit;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => "  " + l)
    .join("\n");
}

function describeExit(e: ChildExit): string {
  if (e.error) return `could not start (${e.error})`;
  return e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`;
}

/** Starts, watches and stops the CLI's child processes (see the module comment). */
export class Supervisor {
  private readonly entries = new Map<string, Entry>();
  private stopping = false;
  private readonly graceMs: number;
  private readonly tailLines: number;
  private readonly pollMs: number;
  private reportFailure!: (e: ChildFailedError) => void;
  /**
   * Resolves (never rejects) with the first child that exits while the supervisor is not
   * stopping: race it against the work that needs the children.
   */
  readonly failed: Promise<ChildFailedError>;
  private readonly onProcessExit = () => this.killNow();
  private readonly forced = new Set<string>();

  constructor(private readonly opts: SupervisorOptions) {
    this.graceMs = opts.graceMs ?? 20_000;
    this.tailLines = opts.tailLines ?? 20;
    this.pollMs = opts.pollMs ?? 200;
    this.failed = new Promise((r) => (this.reportFailure = r));
    mkdirSync(opts.logDir, { recursive: true });
  }

  /** Names of the children started so far. */
  get names(): string[] {
    return [...this.entries.keys()];
  }

  /** `127.0.0.1:<port>` of a child. */
  address(name: string): string {
    return `127.0.0.1:${this.entry(name).spec.port}`;
  }

  /** Its log file. */
  logFile(name: string): string {
    return this.entry(name).logFile;
  }

  /** How a child ended; undefined while it runs. */
  exitOf(name: string): ChildExit | undefined {
    return this.entry(name).exit;
  }

  /** Process id of a child. */
  pid(name: string): number | undefined {
    return this.entry(name).child.pid;
  }

  /** Spawns `process.execPath ...spec.args` now, its stdout and stderr appended to its log file. */
  start(spec: ChildSpec): void {
    if (this.stopping) throw new Error(`cannot start ${spec.name}: stopping`);
    if (this.entries.has(spec.name)) throw new Error(`${spec.name} is already started`);
    const logFile = join(this.opts.logDir, `${spec.name}.log`);
    const fd = openSync(logFile, "a");
    let child: ChildProcess;
    let logOffset: number;
    try {
      logOffset = fstatSync(fd).size;
      // stdin: a pipe that closes when this process ends, however it ends (the child watches it).
      child = spawn(process.execPath, [...spec.args], {
        stdio: ["pipe", fd, fd],
        env: { ...process.env, [EXIT_WITH_PARENT_ENV]: "1", ...spec.env },
        detached: true,
      });
    } finally {
      closeSync(fd); // the child holds its own copy
    }
    const exited = new Promise<ChildExit>((resolve) => {
      child.once("exit", (code, signal) => resolve({ code, signal }));
      // spawn failures (no exit event follows) count as an exit
      child.once("error", (err) => resolve({ code: null, signal: null, error: err.message }));
    });
    // Never written; must not keep this process alive, nor throw if the child has gone.
    child.stdin?.on("error", () => undefined);
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    const entry: Entry = { spec, child, logFile, logOffset, exited };
    this.entries.set(spec.name, entry);
    if (this.entries.size === 1) process.on("exit", this.onProcessExit);
    void exited.then((e) => {
      entry.exit = e;
      child.stdin?.destroy();
      if (!this.stopping) this.reportFailure(new ChildFailedError(spec.name, `${describeExit(e)} unexpectedly`, logFile, this.logTail(spec.name)));
    });
  }

  /**
   * Waits until every named child (default: all) is ready (see {@link ChildSpec.ready};
   * `opts.ready` overrides it). Rejects with {@link ChildFailedError} when one exits first or is
   * not ready after `opts.timeoutMs` (default 180 s); with the signal's reason when it aborts.
   */
  async waitReady(names: readonly string[] = this.names, opts: WaitOptions = {}): Promise<void> {
    await Promise.all(names.map((n) => this.waitOne(this.entry(n), opts.timeoutMs ?? 180_000, opts.ready, opts.signal)));
  }

  private async waitOne(e: Entry, timeoutMs: number, ready: ChildSpec["ready"], signal?: AbortSignal): Promise<void> {
    const want = ready ?? e.spec.ready ?? "answer";
    const address = `127.0.0.1:${e.spec.port}`;
    const end = Date.now() + timeoutMs;
    let last = "no answer";
    for (;;) {
      signal?.throwIfAborted();
      if (e.exit) throw new ChildFailedError(e.spec.name, `${describeExit(e.exit)} before it was ready`, e.logFile, this.logTail(e.spec.name));
      try {
        last = await checkHealth(address, "", 1000);
        if (want === "answer" || last === "SERVING") return;
      } catch (err) {
        last = (err as Error).message;
      }
      if (Date.now() >= end) {
        const secs = Math.round(timeoutMs / 1000);
        const reason = want === "serving" ? `was not SERVING on ${address} after ${secs} s (last: ${last})` : `did not answer health on ${address} within ${secs} s (${last})`;
        throw new ChildFailedError(e.spec.name, reason, e.logFile, this.logTail(e.spec.name));
      }
      // Wake early if the child exits meanwhile.
      await Promise.race([sleep(this.pollMs), e.exited]);
    }
  }

  /**
   * The last `lines` lines (default: the `tailLines` option) that a child wrote to its log in
   * this session, JSON log lines made readable ({@link readableLogLine}), each cut to 1000
   * characters.
   */
  logTail(name: string, lines = this.tailLines): string {
    const e = this.entry(name);
    let fd: number;
    try {
      fd = openSync(e.logFile, "r");
    } catch {
      return "";
    }
    try {
      const size = fstatSync(fd).size;
      const from = Math.max(e.logOffset, size - 64 * 1024);
      const buf = Buffer.alloc(size - from);
      let got = 0;
      while (got < buf.length) {
        const n = readSync(fd, buf, got, buf.length - got, from + got);
        if (n === 0) break;
        got += n;
      }
      const all = buf.subarray(0, got).toString("utf8").split("\n");
      if (all[all.length - 1] === "") all.pop();
      // The first line of a 64 KiB window may be cut; drop it unless the window is the whole log.
      if (from > e.logOffset && all.length > 1) all.shift();
      return all
        .slice(-lines)
        .map(readableLogLine)
        .map((l) => (l.length > 1000 ? l.slice(0, 1000) + "…" : l))
        .join("\n");
    } finally {
      closeSync(fd);
    }
  }

  /**
   * Stops every child still running: SIGTERM, then SIGKILL to those still there after the
   * grace period. Resolves with how each child ended once all have exited. Idempotent.
   */
  async stop(graceMs = this.graceMs): Promise<Record<string, ChildExit>> {
    this.stopping = true;
    await Promise.all(
      [...this.entries.values()].map(async (e) => {
        if (e.exit) return;
        signalChild(e.child, "SIGTERM");
        let timer: NodeJS.Timeout | undefined;
        const killed = new Promise<void>((r) => {
          timer = setTimeout(() => {
            this.forced.add(e.spec.name);
            signalChild(e.child, "SIGKILL");
            r();
          }, graceMs);
        });
        await Promise.race([e.exited, killed]);
        clearTimeout(timer);
        await e.exited;
      }),
    );
    process.removeListener("exit", this.onProcessExit);
    const out: Record<string, ChildExit> = {};
    for (const [name, e] of this.entries) out[name] = await e.exited;
    return out;
  }

  /** Children that {@link stop} had to SIGKILL because they outlived the grace period. */
  get killedAfterGrace(): string[] {
    return [...this.forced];
  }

  /** SIGKILLs every child still running, at once (synchronous: safe in an exit hook). */
  killNow(): void {
    this.stopping = true;
    for (const e of this.entries.values()) if (!e.exit) signalChild(e.child, "SIGKILL");
  }

  private entry(name: string): Entry {
    const e = this.entries.get(name);
    if (!e) throw new Error(`no child named ${name}`);
    return e;
  }
}

const LEVELS: Readonly<Record<number, string>> = { 10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal" };

/**
 * A pino JSON line as `<level> <msg> {other fields}` (without time, service, version, pid,
 * hostname); any other line as it is.
 */
export function readableLogLine(line: string): string {
  if (!line.startsWith("{")) return line;
  try {
    const o = JSON.parse(line) as Record<string, unknown>;
    if (typeof o.msg !== "string") return line;
    const { level, msg, time: _t, service: _s, version: _v, pid: _p, hostname: _h, ...rest } = o;
    const lvl = typeof level === "number" ? (LEVELS[level] ?? String(level)) : String(level ?? "");
    return `${lvl} ${msg}${Object.keys(rest).length > 0 ? " " + JSON.stringify(rest) : ""}`;
  } catch {
    return line;
  }
}

function signalChild(child: ChildProcess, sig: NodeJS.Signals): void {
  try {
    child.kill(sig);
  } catch {
    // already gone
  }
}
