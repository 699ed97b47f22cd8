/**
 * Benchmark: streams a 200 MB tensor set between two processes over loopback through the
 * service kit (gRPC server stream of TensorSetChunk, 1 MiB pieces, SHA-256 digest, full
 * validation on receipt) and compares with a plain Node TCP socket moving the same bytes in
 * the same run. Prints figures; asserts nothing about time.
 *
 *   pnpm bench:stream            (BENCH_BYTES=... BENCH_REPEATS=... to change the size / runs)
 */
import { spawn } from "node:child_process";
import { connect } from "node:net";
import { createInterface } from "node:readline";
import { common, policy } from "@rlhf/proto";
import { createClient } from "@rlhf/grpc-kit";
import { receiveTensorSet } from "@rlhf/tensor-transport";

const repeats = Number(process.env.BENCH_REPEATS ?? 3);
const MB = 1e6;

async function main() {
  const child = spawn(process.execPath, [require.resolve("./stream-server")], { stdio: ["ignore", "pipe", "inherit"], env: process.env });
  const first = await new Promise<string>((res) => createInterface({ input: child.stdout! }).once("line", res));
  const { grpc: grpcPort, tcp: tcpPort, bytes } = JSON.parse(first) as { grpc: number; tcp: number; bytes: number };
  const client = createClient(policy.PolicyServiceClient, `127.0.0.1:${grpcPort}`, { deadlineMs: 600_000 });

  const viaGrpc = async (dtype: common.Dtype) => {
    const t0 = process.hrtime.bigint();
    const stream = client.serverStream("streamWeights", { model: policy.ModelKind.MODEL_KIND_POLICY, dtype });
    const set = await receiveTensorSet(stream, (m: policy.StreamWeightsResponse) => m.chunk);
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    return { seconds: s, wireBytes: set.bytes };
  };
  const viaTcp = () =>
    new Promise<{ seconds: number; wireBytes: number }>((res, rej) => {
      const t0 = process.hrtime.bigint();
      const out = Buffer.allocUnsafe(bytes);
      let n = 0;
      const sock = connect(tcpPort, "127.0.0.1");
      sock.on("data", (d: Buffer) => {
        d.copy(out, n);
        n += d.length;
      });
      sock.on("end", () => res({ seconds: Number(process.hrtime.bigint() - t0) / 1e9, wireBytes: n }));
      sock.on("error", rej);
    });

  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const rows: { name: string; s: number[]; bytes: number }[] = [
    { name: "plain TCP socket (raw bytes)", s: [], bytes: 0 },
    { name: "service kit, float32 wire", s: [], bytes: 0 },
    { name: "service kit, float16 wire", s: [], bytes: 0 },
  ];
  await viaTcp(); // warm-up
  await viaGrpc(common.Dtype.DTYPE_FLOAT32);
  for (let r = 0; r < repeats; r++) {
    // Interleaved so that machine noise hits every variant alike.
    const t = await viaTcp();
    rows[0].s.push(t.seconds);
    rows[0].bytes = t.wireBytes;
    const g = await viaGrpc(common.Dtype.DTYPE_FLOAT32);
    rows[1].s.push(g.seconds);
    rows[1].bytes = g.wireBytes;
    const h = await viaGrpc(common.Dtype.DTYPE_FLOAT16);
    rows[2].s.push(h.seconds);
    rows[2].bytes = h.wireBytes;
  }
  const tcpMedian = median(rows[0].s);
  console.log(`tensor set: ${(bytes / MB).toFixed(0)} MB of float32 in ${Math.ceil(bytes / 4e6)} tensors; ${repeats} runs each, median shown; node ${process.version}`);
  console.log("variant                          wire MB   seconds   MB/s (of the 200 MB set)   time vs TCP");
  for (const row of rows) {
    const s = median(row.s);
    console.log(
      `${row.name.padEnd(32)} ${(row.bytes / MB).toFixed(0).padStart(7)}   ${s.toFixed(3).padStart(7)}   ${(bytes / MB / s).toFixed(0).padStart(10)}                 ${(s / tcpMedian).toFixed(2)}x`,
    );
  }
  console.log(`throughput ratio, service kit float32 / plain TCP: ${(tcpMedian / median(rows[1].s)).toFixed(3)}`);
  client.close();
  child.kill("SIGTERM");
}
main().catch((e) => {
  console.error(e);
  process.exit(1);
});
