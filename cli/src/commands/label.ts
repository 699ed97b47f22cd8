/**
 * `rlhf label`: the labeling service from the command line. `serve` runs it in this process (web
 * UI + gRPC), `import` submits comparisons from a JSONL file, `export` writes the rankings as the
 * JSONL `rlhf data check` and the recipe read, `simulate` has the simulated labelers of
 * @rlhf/data rank through the service's web API, as people do.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { basename, resolve, join } from "node:path";
import { createHash } from "node:crypto";
import { type ParsedArgs, UsageError, allowFlags, flagString } from "../args";
import { exitWithParent } from "../run/parent-watch";

export const LABEL_USAGE = `rlhf label serve [--port N] [--grpc-port N] [--host ADDR] [--data-dir DIR] [--database-url URL] [--no-seed]
  Runs the labeling service here: the web UI (HTTP_PORT, default 8055) and gRPC (GRPC_PORT,
  default 50055). Prints the UI's URL and an admin link. On an empty database it adds a sample
  batch (12 built-in prompts, K = 4) and a labeler "demo" and prints the demo's invite link.
  --data-dir DIR        LABELING_DATA_DIR (default ./labeling): the SQLite file and the admin token
  --database-url URL    DATABASE_URL: PostgreSQL instead of SQLite
  --host ADDR           HTTP_HOST and GRPC_HOST (default 127.0.0.1)
  --no-seed             no sample batch on an empty database

rlhf label import <samples.jsonl> [--batch ID] [--overlap PCT] [--addr HOST:PORT]
  Submits the file's comparisons as one batch: one JSON object per line, {"prompt", "responses"}
  (K = 2..16 distinct responses) with an optional "key"; a rankings file's "ranking" is ignored
  and pairs {"prompt", "chosen", "rejected"} become K = 2. The batch id defaults to the file's
  name and digest, so importing the same file twice adds nothing.
  --overlap PCT         share of comparisons that go to two labelers (default: the service's, 10)

rlhf label export --out FILE [--batch ID] [--first] [--meta] [--addr HOST:PORT]
  Writes every ranking (of one batch with --batch) as rankings JSONL {"prompt", "responses",
  "ranking"}, the format \`rlhf data check\` and data.files.rankings read.
  --first               one ranking per comparison (the first submitted), as the recipe uses
  --meta                also batch_id, key, labeler, simulated, scores and flags on each line

rlhf label simulate [--url URL] [--admin-token-file FILE] [--labelers N] [--agreement A] [--seed N] [--max N]
  Simulated labelers (the recipe's, @rlhf/data) rank what is waiting, through the web API as
  people do: each is created as a labeler ("sim-<seed>-<i>-<random>", simulated) with the admin
  token and ranks until nothing is left (or --max rankings in all). Comparisons whose key is not a
  built-in task id (<family>:<sentence id>, as the sample batch and the recipe use) are skipped.
  --url URL             the web UI (default LABELING_URL or http://127.0.0.1:8055/)
  --admin-token-file F  LABELING_ADMIN_TOKEN_FILE (default ./labeling/admin-token)
  --labelers N          panel size (default 4); --agreement A target agreement (default 0.73)

--addr HOST:PORT: the gRPC address (default LABELING_ADDR or 127.0.0.1:50055). Tokens and TLS come
from the environment as for every client (RLHF_TOKEN, RLHF_CLIENT_TOKEN_FILE, GRPC_TLS_*; import
and export need the service role). docs/labeling.md has the details.`;

/** Runs `rlhf label <serve|import|export|simulate>`. */
export async function label(args: ParsedArgs, print: (line: string) => void = console.log): Promise<void> {
  const sub = args.positional[1];
  if (sub === "serve") return serveCommand(args);
  if (sub === "import") return importCommand(args, print);
  if (sub === "export") return exportCommand(args, print);
  if (sub === "simulate") return simulateCommand(args, print);
  throw new UsageError(sub ? `unknown label command "${sub}"\n${LABEL_USAGE}` : `rlhf label needs a command: serve, import, export or simulate\n${LABEL_USAGE}`);
}

function intFlag(args: ParsedArgs, name: string, min: number, max: number): number | undefined {
  const raw = flagString(args, name);
  if (raw === undefined) return undefined;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) throw new UsageError(`--${name} must be an integer in [${min}, ${max}], got "${raw}"`);
  return Number(raw);
}

function serveCommand(args: ParsedArgs): void {
  allowFlags(args, ["port", "grpc-port", "host", "data-dir", "database-url", "no-seed"], "rlhf label serve");
  if (args.positional.length > 2) throw new UsageError(`rlhf label serve takes no argument, got: ${args.positional.slice(2).join(" ")}`);
  const set = (flag: string, env: string) => {
    const v = flagString(args, flag);
    if (v !== undefined) process.env[env] = v;
  };
  set("port", "HTTP_PORT");
  set("grpc-port", "GRPC_PORT");
  set("data-dir", "LABELING_DATA_DIR");
  set("database-url", "DATABASE_URL");
  const host = flagString(args, "host");
  if (host !== undefined) process.env.HTTP_HOST = process.env.GRPC_HOST = host;
  process.env.LABELING_SEED_SAMPLE = args.flags.has("no-seed") ? "0" : (process.env.LABELING_SEED_SAMPLE ?? "1");
  // The person at this terminal gets the admin link (with the token) and the demo's invite link.
  process.env.LABELING_PRINT_LINKS = "1";
  let entry: string;
  try {
    entry = require.resolve("@rlhf/labeling/dist/main.js");
  } catch {
    throw new UsageError("the labeling service is not built: run `pnpm build` first");
  }
  exitWithParent();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  require(entry);
}

// Loaded when a command runs: it pulls in gRPC.
function loadClient(): typeof import("@rlhf/labeling-client") {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require("@rlhf/labeling-client") as typeof import("@rlhf/labeling-client");
}

function address(args: ParsedArgs): string {
  return flagString(args, "addr") ?? process.env.LABELING_ADDR ?? "127.0.0.1:50055";
}

interface FileComparison {
  key: string;
  prompt: string;
  responses: string[];
  line: number;
}

/** Reads a samples file; a bad line is a UsageError naming file, line and field. */
export function readSamples(file: string): FileComparison[] {
  const out: FileComparison[] = [];
  const lines = readFileSync(file, "utf8").split("\n");
  lines.forEach((text, i) => {
    const line = i + 1;
    if (text.trim() === "") return;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new UsageError(`${file}:${line}: not JSON (${(e as Error).message.replace(/^.*?(position \d+).*$/, "$1")})`);
    }
    if (typeof v !== "object" || v === null || Array.isArray(v)) throw new UsageError(`${file}:${line}: expected a JSON object`);
    const o = v as Record<string, unknown>;
    if (typeof o.prompt !== "string") throw new UsageError(`${file}:${line}: prompt: expected a string`);
    let responses: unknown = o.responses;
    if (responses === undefined && typeof o.chosen === "string" && typeof o.rejected === "string") responses = [o.chosen, o.rejected];
    if (!Array.isArray(responses) || !responses.every((r) => typeof r === "string")) throw new UsageError(`${file}:${line}: responses: expected an array of strings`);
    if (o.key !== undefined && typeof o.key !== "string") throw new UsageError(`${file}:${line}: key: expected a string`);
    out.push({ key: (o.key as string | undefined) ?? `line-${line}`, prompt: o.prompt, responses: responses as string[], line });
  });
  if (out.length === 0) throw new UsageError(`${file}: no comparisons`);
  return out;
}

async function importCommand(args: ParsedArgs, print: (line: string) => void): Promise<void> {
  allowFlags(args, ["batch", "overlap", "addr"], "rlhf label import");
  const file = args.positional[2];
  if (!file) throw new UsageError(`rlhf label import needs a file\n${LABEL_USAGE}`);
  if (args.positional.length > 3) throw new UsageError(`rlhf label import takes one file, got: ${args.positional.slice(2).join(" ")}`);
  if (!existsSync(file)) throw new UsageError(`${file}: no such file`);
  const comparisons = readSamples(file);
  const digest = createHash("sha256").update(readFileSync(file)).digest("hex").slice(0, 12);
  const batchId = flagString(args, "batch") ?? `${basename(file).replace(/\.[^.]*$/, "").replace(/[^A-Za-z0-9._:-]/g, "-").slice(0, 48)}-${digest}`;
  const overlap = intFlag(args, "overlap", 0, 100);
  const { LabelingClient } = loadClient();
  const client = new LabelingClient(address(args));
  try {
    const r = await client
      .submitBatch(
        batchId,
        comparisons.map(({ key, prompt, responses }) => ({ key, prompt, responses })),
        { overlapFraction: overlap === undefined ? undefined : overlap / 100, source: `rlhf label import ${basename(file)}` },
      )
      .catch((e: Error & { details?: string }) => {
        // comparisons[i] of the request is the i-th record of the file: say which line.
        const m = /comparisons\[(\d+)\](\S*): (.*)$/.exec(e.details ?? "");
        if (m) throw new Error(`${file}:${comparisons[Number(m[1])].line}: ${m[2].replace(/^\./, "") || "record"}: ${m[3]}`);
        throw e;
      });
    const p = r.progress;
    print(`${r.created ? "submitted" : "already there:"} batch ${p.batchId}: ${p.comparisons} comparisons (${p.overlapping} for two labelers), ${p.ranked} ranked`);
  } finally {
    client.close();
  }
}

async function exportCommand(args: ParsedArgs, print: (line: string) => void): Promise<void> {
  allowFlags(args, ["out", "batch", "first", "meta", "addr"], "rlhf label export");
  if (args.positional.length > 2) throw new UsageError(`rlhf label export takes no argument (use --out FILE), got: ${args.positional.slice(2).join(" ")}`);
  const out = flagString(args, "out");
  if (!out) throw new UsageError(`rlhf label export needs --out FILE\n${LABEL_USAGE}`);
  const batch = flagString(args, "batch");
  const { LabelingClient, rankingsToJsonl, firstRankingPerComparison } = loadClient();
  const client = new LabelingClient(address(args));
  try {
    let rankings = await client.listRankings(batch ?? "");
    if (args.flags.has("first")) {
      const seen = new Set<string>();
      const keys: string[] = [];
      for (const r of rankings) {
        const k = `${r.batchId}\n${r.key}`;
        if (!seen.has(k)) keys.push(k);
        seen.add(k);
      }
      rankings = firstRankingPerComparison(keys, rankings.map((r) => ({ ...r, key: `${r.batchId}\n${r.key}` }))).map((r) => ({ ...r, key: r.key.split("\n")[1] }));
    }
    writeFileSync(resolve(out), rankingsToJsonl(rankings, { meta: args.flags.has("meta") }));
    print(`wrote ${rankings.length} rankings to ${out}${batch ? ` (batch ${batch})` : ""}`);
  } finally {
    client.close();
  }
}

async function simulateCommand(args: ParsedArgs, print: (line: string) => void): Promise<void> {
  allowFlags(args, ["url", "admin-token-file", "labelers", "agreement", "seed", "max"], "rlhf label simulate");
  if (args.positional.length > 2) throw new UsageError(`rlhf label simulate takes no argument, got: ${args.positional.slice(2).join(" ")}`);
  const url = flagString(args, "url") ?? process.env.LABELING_URL ?? "http://127.0.0.1:8055/";
  const tokenFile = flagString(args, "admin-token-file") ?? process.env.LABELING_ADMIN_TOKEN_FILE ?? join(process.env.LABELING_DATA_DIR ?? "labeling", "admin-token");
  if (!existsSync(tokenFile)) throw new UsageError(`${tokenFile}: no admin token file (give --admin-token-file)`);
  const count = intFlag(args, "labelers", 1, 64) ?? 4;
  const seed = intFlag(args, "seed", 0, 2 ** 31 - 1) ?? 0;
  const max = intFlag(args, "max", 1, 10_000_000);
  const agreementRaw = flagString(args, "agreement");
  const agreement = agreementRaw === undefined ? undefined : Number(agreementRaw);
  if (agreement !== undefined && !(agreement > 0.5 && agreement < 1)) throw new UsageError(`--agreement must be in (0.5, 1), got "${agreementRaw}"`);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { simulateLabeling } = require("../label-simulate") as typeof import("../label-simulate");
  const r = await simulateLabeling({ url, adminToken: readFileSync(tokenFile, "utf8").split("\n")[0].trim(), count, seed, agreement, max, log: print });
  print(`simulated labelers ranked ${r.ranked} comparisons (skipped ${r.skipped} that are not built-in tasks)`);
}
