/**
 * Benchmark: how fast each service of a running `rlhf demo` / `rlhf run` answers grpc.health.v1
 * while it trains. Reads each service's address from the last "listening" line of
 * `<runs dir>/<service>.log`, checks health every INTERVAL ms (one check at a time per service,
 * 30 s deadline), and prints per service the number of checks, the median, the 99th percentile,
 * the slowest answer and how many took over a second. Asserts nothing about time.
 *
 *   node --import tsx e2e/src/bench/health-latency.ts <runs dir> [seconds=600] [interval ms=200]
 *
 * Start it after the run has started its services (it exits when every service has gone or the
 * time is up).
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { checkHealth } from "@rlhf/grpc-kit";

const SERVICES = ["policy", "reward-model", "reference-model", "pretrain-mix", "ppo-coordinator"];

function addressOf(runsDir: string, service: string): string | undefined {
  let text: string;
  try {
    text = readFileSync(join(runsDir, `${service}.log`), "utf8");
  } catch {
    return undefined;
  }
  let address: string | undefined;
  for (const line of text.split("\n")) {
    if (!line.includes('"listening"')) continue;
    try {
      address = (JSON.parse(line) as { address?: string }).address ?? address;
    } catch {
      // a torn last line
    }
  }
  return address;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? NaN;

async function poll(address: string, until: number, intervalMs: number): Promise<number[]> {
  const ms: number[] = [];
  let failures = 0;
  while (Date.now() < until && failures < 3) {
    const t0 = process.hrtime.bigint();
    try {
      await checkHealth(address, "", 30_000);
      ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
      failures = 0;
    } catch {
      failures++; // the service has gone (or never answered): three in a row end the poll
    }
    await sleep(intervalMs);
  }
  return ms;
}

async function main() {
  const [runsDir, seconds = "600", interval = "200"] = process.argv.slice(2);
  if (!runsDir) throw new Error("usage: health-latency.ts <runs dir> [seconds] [interval ms]");
  const until = Date.now() + Number(seconds) * 1000;
  const found = SERVICES.map((s) => [s, addressOf(runsDir, s)] as const).filter((e): e is readonly [string, string] => e[1] !== undefined);
  if (found.length === 0) throw new Error(`no <service>.log with a "listening" line in ${runsDir}`);
  const results = await Promise.all(found.map(async ([s, a]) => [s, a, await poll(a, until, Number(interval))] as const));
  console.log("service          address            checks  median ms  p99 ms  max ms  over 1 s");
  for (const [s, a, ms] of results) {
    const f = (x: number) => (Number.isNaN(x) ? "-" : x.toFixed(1));
    console.log(`${s.padEnd(16)} ${a.padEnd(18)} ${String(ms.length).padStart(6)} ${f(pct(ms, 0.5)).padStart(10)} ${f(pct(ms, 0.99)).padStart(7)} ${f(Math.max(...ms)).padStart(7)} ${String(ms.filter((x) => x > 1000).length).padStart(9)}`);
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exit(1);
});
