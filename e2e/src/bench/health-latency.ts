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
import { SERVICES, addressOf, pct, poll } from "./health";

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
