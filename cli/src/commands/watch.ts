/**
 * `rlhf watch <run-id|run-folder>`: follows a run from NATS JetStream (the RLHF_RUNS stream, an
 * ordered consumer from the run's first event) or from its run folder (events.jsonl, followed as
 * it grows), with the same progress display as `rlhf demo` or one JSON event per line. A finished
 * run is replayed and the command exits at its last state change.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from "node:fs";
import { hostname } from "node:os";
import { basename, dirname, join, resolve } from "node:path";
import type { ppoCoordinator as pb } from "@rlhf/proto";
import { type ParsedArgs, UsageError, allowFlags, flagString } from "../args";
import { cliCommand } from "../invocation";
import { RUN_ID, isPathArgument } from "../run-folder";

export const WATCH_USAGE = `rlhf watch <run-id> [--nats URL | --runs-dir DIR] [--json]
rlhf watch <run-folder> [--json]
  Follows a run: each stage's progress (step/total) and the latest PPO metrics, live, until the
  run ends. A run that already ended is replayed from its first event, then the command exits.
  A run folder (a path, e.g. runs/<run-id>) is read as with --runs-dir.
  Where the events come from:
  --nats URL        NATS with JetStream (default: NATS_URL): stream RLHF_RUNS, subjects
                    rlhf.runs.<run-id>.>, every event from the run's first one
  --runs-dir DIR    the run folder DIR/<run-id>: its events.jsonl, followed as it grows
                    (default ./runs when neither --nats nor NATS_URL is given; it wins over
                    NATS_URL)
  --json            one event per line instead of the display: the JSON of events.jsonl (from
                    NATS also the policy's weights events, {"runId", "time", "weights": {...}})
Exit status: 0 the run SUCCEEDED, 1 it FAILED or was CANCELLED, or the run is unknown, or NATS
cannot be reached, or (run folder) the coordinator running it on this machine is gone; 2 bad arguments; 130 interrupted (Ctrl-C).`;

/** Where `rlhf watch` reads a run's events. */
export type WatchSource = { kind: "nats"; servers: string[] } | { kind: "folder"; runsDir: string };

/** `rlhf watch` arguments, checked. */
export interface WatchOptions {
  runId: string;
  source: WatchSource;
  json: boolean;
}

/** Turns arguments (and NATS_URL) into options; every mistake is a UsageError (exit status 2). */
export function watchOptions(args: ParsedArgs, env: Readonly<Record<string, string | undefined>>): WatchOptions {
  allowFlags(args, ["nats", "runs-dir", "json"], "rlhf watch");
  const runId = args.positional[1];
  if (!runId) throw new UsageError(`which run?\n${WATCH_USAGE}`);
  if (args.positional.length > 2) throw new UsageError(`rlhf watch: unexpected argument "${args.positional[2]}"`);
  if (typeof args.flags.get("json") === "string") throw new UsageError("--json takes no value");
  const nats = flagString(args, "nats");
  const runsDir = flagString(args, "runs-dir");
  if (nats !== undefined && runsDir !== undefined) throw new UsageError("give --nats or --runs-dir, not both");
  const json = args.flags.has("json");
  if (isPathArgument(runId)) {
    // A run folder: its parent is the runs folder, its name the run id.
    if (nats !== undefined || runsDir !== undefined) throw new UsageError(`${runId} is a run folder: --${nats !== undefined ? "nats" : "runs-dir"} goes with a run id`);
    const folder = resolve(runId);
    if (!RUN_ID.test(basename(folder))) throw new UsageError(`${runId} is not a run folder: its name "${basename(folder)}" is not a run id (a-z, 0-9 and -)`);
    return { runId: basename(folder), source: { kind: "folder", runsDir: dirname(folder) }, json };
  }
  if (!RUN_ID.test(runId)) throw new UsageError(`the run id must be 1-64 characters of a-z, 0-9 and -, got "${runId}"`);
  // Loaded only now: @rlhf/events pulls in the NATS client.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { parseNatsServers } = require("@rlhf/events") as typeof import("@rlhf/events");
  const servers = (raw: string, name: string) => {
    try {
      return parseNatsServers(raw, name);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  };
  if (nats !== undefined) return { runId, source: { kind: "nats", servers: servers(nats, "--nats") }, json };
  if (runsDir === undefined && env.NATS_URL && env.NATS_URL.trim() !== "") return { runId, source: { kind: "nats", servers: servers(env.NATS_URL, "NATS_URL") }, json };
  const dir = resolve(runsDir ?? "runs");
  if (existsSync(dir) && !statSync(dir).isDirectory()) throw new UsageError(`--runs-dir ${dir} is not a folder`);
  return { runId, source: { kind: "folder", runsDir: dir }, json };
}

/** One event as read: its JSON text, and whether it is the last one there is for now. */
export interface WatchedEvent {
  text: string;
  latest: boolean;
}

/** Where output goes (process.stdout, or a collector in tests). */
export interface WatchIo {
  out: NodeJS.WritableStream & { isTTY?: boolean; columns?: number };
  /** Ctrl-C: stop following (exit status 130). */
  signal?: AbortSignal;
  /** Run folder: time between two looks at events.jsonl. Default 250 ms. */
  pollMs?: number;
  /** Time between two ticks of the display's clock (see ProgressRenderer.tick). Default 1000 ms. */
  tickMs?: number;
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((r) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      r();
    }
    signal?.addEventListener("abort", done, { once: true });
  });

/**
 * The lines of a growing events.jsonl, from its start: complete lines only (a half-written last
 * line waits for its end). Ends when `signal` aborts, or when all is read and `gone()` says the
 * writer has stopped.
 */
export async function* followFile(path: string, signal?: AbortSignal, pollMs = 250, gone?: () => boolean): AsyncGenerator<WatchedEvent> {
  let offset = 0;
  let partial = Buffer.alloc(0);
  while (!signal?.aborted) {
    const size = existsSync(path) ? statSync(path).size : 0;
    if (size <= offset) {
      // Everything written so far is read: stop if no one will write more.
      if (gone?.()) return;
      await sleep(pollMs, signal);
      continue;
    }
    const buf = Buffer.alloc(size - offset);
    const fd = openSync(path, "r");
    try {
      readSync(fd, buf, 0, buf.length, offset);
    } finally {
      closeSync(fd);
    }
    offset = size;
    // Split on newline bytes before decoding, so that a character cut by a read is not broken.
    let data = Buffer.concat([partial, buf]);
    const lines: string[] = [];
    for (let nl = data.indexOf(0x0a); nl >= 0; nl = data.indexOf(0x0a)) {
      const line = data.subarray(0, nl).toString("utf8").trim();
      if (line !== "") lines.push(line);
      data = data.subarray(nl + 1);
    }
    partial = Buffer.from(data);
    for (let i = 0; i < lines.length; i++) yield { text: lines[i], latest: i === lines.length - 1 };
  }
}

/** The events of a run from NATS (see the module comment); throws a clear Error for an unknown run. */
async function* fromNats(servers: string[], runId: string, signal?: AbortSignal): AsyncGenerator<WatchedEvent> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { openRunFeed } = require("@rlhf/events") as typeof import("@rlhf/events");
  const feed = await openRunFeed({ servers, runId });
  const onAbort = () => void feed.close();
  signal?.addEventListener("abort", onAbort, { once: true });
  try {
    for await (const m of feed) yield { text: m.text, latest: m.pending === 0 };
  } finally {
    signal?.removeEventListener("abort", onAbort);
    await feed.close();
  }
}

/**
 * Follows the run until its last state change (SUCCEEDED, FAILED or CANCELLED with no event
 * after it), writing the display or JSON lines. Returns the exit status.
 */
export async function runWatch(o: WatchOptions, io: WatchIo): Promise<number> {
  // Loaded only now: they pull in gRPC (proto) and the renderer.
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { ppoCoordinator } = require("@rlhf/proto") as typeof import("@rlhf/proto");
  const { ProgressRenderer, isTerminal } = require("../run/progress") as typeof import("../run/progress");
  /* eslint-enable @typescript-eslint/no-require-imports */
  const { RunState, Stage } = ppoCoordinator;
  const write = (s: string) => {
    if (s) io.out.write(s);
  };
  let events: AsyncGenerator<WatchedEvent>;
  let runDir = "";
  let orphaned: () => { pid: number } | undefined = () => undefined;
  const tty = Boolean(io.out.isTTY) && !o.json;
  // Without a terminal: a progress line at most every 30 s of the run's time (a PPO iteration gets its own line).
  const renderer = new ProgressRenderer({ tty, columns: io.out.columns || 120, plainProgressIntervalMs: 30_000 });
  if (o.source.kind === "folder") {
    runDir = join(o.source.runsDir, o.runId);
    if (!existsSync(runDir)) throw new Error(`no run "${o.runId}" in ${o.source.runsDir} (no folder ${runDir})`);
    if (!existsSync(join(runDir, "run.json")) && !existsSync(join(runDir, "events.jsonl"))) throw new Error(`${runDir} is not a run folder (no run.json, no events.jsonl)`);
    // The resolved config says how many iterations each PPO variant has (NATS carries no config).
    if (existsSync(join(runDir, "config.json"))) renderer.useRunConfig(readFileSync(join(runDir, "config.json"), "utf8"));
    const driver = new DriverCheck(runDir);
    orphaned = () => driver.gone;
    events = followFile(join(runDir, "events.jsonl"), io.signal, io.pollMs, () => driver.check());
  } else {
    events = fromNats(o.source.servers, o.runId, io.signal);
  }
  let state: pb.RunState = RunState.RUN_STATE_UNSPECIFIED;
  // The last coordinator event was a terminal state change: the run is over once nothing follows it.
  let ended = false;
  let seen = 0;
  let lastMs = 0;
  // The renderer's clock between events: the last event's time plus the time since it came.
  let lastArrival = Date.now();
  const ticker = o.json ? undefined : setInterval(() => write(renderer.tick(lastMs + Date.now() - lastArrival)), io.tickMs ?? 1000);
  if (!o.json) write(renderer.note(`watching run ${o.runId} from ${o.source.kind === "nats" ? `NATS ${o.source.servers.join(",")} (stream RLHF_RUNS)` : join(runDir, "events.jsonl")}`, 0));
  try {
    for await (const e of events) {
      seen++;
      let json: Record<string, unknown> | undefined;
      try {
        json = JSON.parse(e.text) as Record<string, unknown>;
      } catch {
        json = undefined;
      }
      if (o.json) write(e.text + "\n");
      // The policy's weights events (NATS only) are not run events: they change nothing here.
      if (json && !("weights" in json)) {
        const event = ppoCoordinator.RunEvent.fromJSON(json);
        const t = event.time?.getTime() ?? lastMs;
        lastMs = Math.max(lastMs, t);
        lastArrival = Date.now();
        if (event.payload?.$case === "stateChanged") state = event.payload.stateChanged.toState;
        ended = event.payload?.$case === "stateChanged" && isTerminal(event.payload.stateChanged.toState);
        // The event's own time is the renderer's clock: a replay shows what a live watcher saw.
        // What fell due before this event is written first, as the live display's ticker would.
        const due = renderer.tick(lastMs);
        const text = renderer.push(event, lastMs);
        if (!o.json) write(due + text);
        // Without a terminal the block is not drawn: each PPO iteration gets a line with its key metrics.
        if (!o.json && !tty && event.payload?.$case === "metrics" && event.payload.metrics.stage === Stage.STAGE_PPO) {
          write(renderer.ppoIterationLine(event.payload.metrics) + "\n");
        }
      }
      if (ended && e.latest) break;
    }
  } catch (err) {
    // Closing the NATS feed on Ctrl-C may end its iteration with an error.
    if (!io.signal?.aborted) throw err;
  } finally {
    clearInterval(ticker);
  }
  if (io.signal?.aborted) {
    renderer.release();
    if (!o.json) write(`stopped watching run ${o.runId} after ${seen} events\n`);
    return 130;
  }
  const gone = orphaned();
  if (gone && !ended) {
    renderer.release();
    const line = `run ${o.runId} did not end: the coordinator running it (process ${gone.pid} on this machine) has stopped without recording its end; it is resumable: ${cliCommand()} resume ${runDir}`;
    write(o.json ? `${JSON.stringify({ runId: o.runId, orphaned: { pid: gone.pid }, message: line })}\n` : `${line}\n`);
    return 1;
  }
  if (!o.json) write(renderer.summary({ runId: o.runId, runDir }, lastMs));
  return state === RunState.RUN_STATE_SUCCEEDED ? 0 : 1;
}

/**
 * Whether the coordinator executing a run folder's run is gone: it writes `driver.json` (its
 * process id and host) while it runs the run and removes it when the run ends. A process of this
 * machine named there that no longer exists was killed before it could record the run's end.
 * Checked at most every 2 s; a folder without the file, or one of another host, is never gone.
 */
class DriverCheck {
  gone: { pid: number } | undefined;
  private lastMs = 0;

  constructor(private readonly runDir: string) {}

  check(): boolean {
    const now = Date.now();
    if (this.gone || now - this.lastMs < 2000) return Boolean(this.gone);
    this.lastMs = now;
    let mark: { pid?: unknown; host?: unknown };
    try {
      mark = JSON.parse(readFileSync(join(this.runDir, "driver.json"), "utf8")) as typeof mark;
    } catch {
      return false;
    }
    if (typeof mark.pid !== "number" || mark.host !== hostname()) return false;
    try {
      process.kill(mark.pid, 0);
      return false;
    } catch (e) {
      // EPERM: it exists (another user's): not gone.
      if ((e as NodeJS.ErrnoException).code !== "ESRCH") return false;
    }
    // The run may have ended (and the mark been removed) just now: gone only if the mark is still there.
    if (!existsSync(join(this.runDir, "driver.json"))) return false;
    this.gone = { pid: mark.pid };
    return true;
  }
}

/** `rlhf watch`. */
export async function watch(args: ParsedArgs): Promise<void> {
  const o = watchOptions(args, process.env);
  const abort = new AbortController();
  const onSigint = () => abort.abort();
  // `rlhf watch --json | head`: a closed pipe ends the command quietly.
  process.stdout.on("error", (e: NodeJS.ErrnoException) => {
    if (e.code === "EPIPE") process.exit(0);
    throw e;
  });
  process.on("SIGINT", onSigint);
  try {
    process.exitCode = await runWatch(o, { out: process.stdout, signal: abort.signal });
  } finally {
    process.removeListener("SIGINT", onSigint);
  }
}
