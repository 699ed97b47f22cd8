/**
 * Benchmark: how long a health check on a new connection (a Kubernetes probe, grpc_health_probe)
 * waits for a service whose event loop computes in blocks, with the kit's `yieldToEventLoop`
 * between blocks and with one turn of the loop (setImmediate, what the kit did before). A child
 * process serves health and computes blocks of BLOCK_MS; this process checks health on a fresh
 * connection every 100 ms. Prints per way of yielding the checks' median, 90th percentile and
 * maximum (ms and blocks) and the share of time spent yielding; asserts nothing about time.
 *
 *   pnpm bench:yield [block ms=300] [seconds per way=15]
 */
import { fork } from "node:child_process";
import { checkHealth, createLogger, startServer, yieldToEventLoop } from "@rlhf/grpc-kit";
import { pct } from "./health";

const WAYS = { "one turn (setImmediate)": "turn", "yieldToEventLoop": "kit" } as const;
type Way = (typeof WAYS)[keyof typeof WAYS];

/** Child: serve health, compute blocks until the parent disconnects, report the yielding share. */
async function serve(way: Way, blockMs: number): Promise<void> {
  const server = await startServer({ services: [], log: createLogger({ service: "bench-yield", level: "warn" }), auth: null });
  server.setServing(true);
  process.send!({ address: server.address });
  let computing = 0;
  const t0 = performance.now();
  let stop = false;
  process.once("disconnect", () => (stop = true));
  while (!stop) {
    const b = performance.now();
    while (performance.now() - b < blockMs); // one optimizer step of a synchronous backend
    computing += performance.now() - b;
    await (way === "turn" ? new Promise<void>((r) => setImmediate(r)) : yieldToEventLoop());
  }
  const total = performance.now() - t0;
  console.log(JSON.stringify({ yieldingShare: 1 - computing / total }));
  process.exit(0);
}

async function measure(way: Way, blockMs: number, seconds: number) {
  const child = fork(__filename, ["--serve", way, String(blockMs)], { stdio: ["ignore", "pipe", "inherit", "ipc"] });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  const { address } = await new Promise<{ address: string }>((r) => child.once("message", (m) => r(m as { address: string })));
  const ms: number[] = [];
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) {
    const t = performance.now();
    await checkHealth(address, "", 30_000);
    ms.push(performance.now() - t);
    await new Promise((r) => setTimeout(r, 100));
  }
  const exited = new Promise((r) => child.once("exit", r));
  child.disconnect();
  await exited;
  const share = (JSON.parse(out.trim().split("\n").pop() ?? "{}") as { yieldingShare?: number }).yieldingShare ?? NaN;
  return { checks: ms.length, median: pct(ms, 0.5), p90: pct(ms, 0.9), max: Math.max(...ms), share };
}

async function main() {
  const [blockArg = "300", secondsArg = "15"] = process.argv.slice(2);
  const blockMs = Number(blockArg);
  const seconds = Number(secondsArg);
  if (!(blockMs > 0) || !(seconds > 0)) throw new Error("usage: yield-latency [block ms > 0] [seconds per way > 0]");
  console.log(`health check on a new connection while the service computes ${blockMs} ms blocks (${seconds} s per way)`);
  console.log("way                        checks  median ms  p90 ms  max ms  (in blocks: median / p90 / max)  time yielding");
  for (const [name, way] of Object.entries(WAYS)) {
    const r = await measure(way, blockMs, seconds);
    const f = (x: number) => x.toFixed(0).padStart(6);
    const b = (x: number) => (x / blockMs).toFixed(1);
    console.log(`${name.padEnd(26)} ${String(r.checks).padStart(6)} ${f(r.median).padStart(10)} ${f(r.p90).padStart(7)} ${f(r.max).padStart(7)}  ${`${b(r.median)} / ${b(r.p90)} / ${b(r.max)}`.padEnd(33)} ${(r.share * 100).toFixed(1)}%`);
  }
}

if (process.argv[2] === "--serve") {
  void serve(process.argv[3] as Way, Number(process.argv[4]));
} else {
  main().catch((e) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
