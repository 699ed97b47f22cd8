/**
 * Child process of the streaming benchmark: serves the same tensor set two ways, through the
 * service kit (PolicyService.StreamWeights, chunked, digest) and over a plain TCP socket (the raw
 * bytes, nothing else). Prints {"grpc": port, "tcp": port} on stdout when ready.
 */
import { createServer } from "node:net";
import { common, policy } from "@rlhf/proto";
import { createLogger, startServer, serverStream } from "@rlhf/grpc-kit";
import { sendTensorSet, hostToBytes } from "@rlhf/tensor-transport";
import type { NamedHostTensors } from "@rlhf/compute";

const totalBytes = Number(process.env.BENCH_BYTES ?? 200_000_000);
const perTensor = 1_000_000; // floats per tensor (4 MB), like a mid-sized weight matrix
const count = Math.ceil(totalBytes / 4 / perTensor);
const set: NamedHostTensors = new Map();
let seed = 12345;
for (let i = 0; i < count; i++) {
  const n = Math.min(perTensor, totalBytes / 4 - i * perTensor);
  const data = new Float32Array(n);
  for (let j = 0; j < n; j++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    data[j] = (seed / 2 ** 32 - 0.5) * 0.04;
  }
  set.set(`h.${i}.mlp.c_fc.weight`, { dtype: "float32", shape: [n], data });
}

async function main() {
  const log = createLogger({ service: "bench-stream", level: "warn" });
  const srv = await startServer({
    log,
    services: [
      {
        definition: policy.PolicyServiceService,
        implementation: {
          streamWeights: serverStream(log, async (req: policy.StreamWeightsRequest, send) => {
            const wireDtype = req.dtype === common.Dtype.DTYPE_FLOAT16 ? "float16" : "float32";
            await sendTensorSet(send, (chunk): policy.StreamWeightsResponse => ({ chunk }), set, {
              kind: common.TensorSetKind.TENSOR_SET_KIND_WEIGHTS,
              weights: { modelId: "policy", version: 1, source: "bench" },
            }, { wireDtype });
          }),
        },
      },
    ],
  });
  srv.setServing(true);
  const tcp = createServer((sock) => {
    // Same bytes, written with back-pressure, then closed.
    const tensors = [...set.values()];
    let i = 0;
    const pump = () => {
      while (i < tensors.length) {
        const ok = sock.write(hostToBytes(tensors[i++], "float32"));
        if (!ok) return void sock.once("drain", pump);
      }
      sock.end();
    };
    pump();
  });
  await new Promise<void>((r) => tcp.listen(0, "127.0.0.1", r));
  process.stdout.write(JSON.stringify({ grpc: srv.port, tcp: (tcp.address() as { port: number }).port, bytes: count * perTensor * 4 }) + "\n");
  process.on("SIGTERM", () => {
    tcp.close();
    void srv.shutdown(100).then(() => process.exit(0));
  });
}
void main();
