/**
 * A test stand-in for the policy service: a real gRPC server with the generated
 * PolicyService definition that implements only StreamWeights (each configured version, float32
 * or float16 as asked; NOT_FOUND for any other version) and answers UNIMPLEMENTED to everything
 * else. It counts the StreamWeights calls and can hold them until the test lets them go.
 */
import type { MethodDefinition, UntypedServiceImplementation } from "@grpc/grpc-js";
import { POLICY_MODEL_ID, common, policy } from "@rlhf/proto";
import { bidiStream, clientStream, createLogger, serverStream, startServer, unary, type RunningServer } from "@rlhf/grpc-kit";
import { sendTensorSet, modelConfigToProto } from "@rlhf/tensor-transport";
import { DomainError, InvalidArgumentError, NotFoundError } from "@rlhf/errors";
import type { GPT2Config } from "@rlhf/model";
import type { NamedHostTensors } from "@rlhf/compute";

/** One version the fake policy serves. */
export interface FakePolicyWeights {
  config: GPT2Config;
  tensors: NamedHostTensors;
}

/** A started fake policy. */
export interface FakePolicy {
  server: RunningServer;
  address: string;
  /** Version asked for by every StreamWeights call so far (undefined: the current one). */
  readonly calls: (number | undefined)[];
  /** Makes every StreamWeights call wait (after being counted) until the returned function runs. */
  hold(): () => void;
  stop(): Promise<void>;
}

/**
 * Starts the fake on 127.0.0.1:0. `versions` maps a weights version to its weights; a request
 * without a version gets the highest one.
 */
export async function startFakePolicy(versions: ReadonlyMap<number, FakePolicyWeights>): Promise<FakePolicy> {
  const log = createLogger({ service: "fake-policy", level: "silent" });
  const calls: (number | undefined)[] = [];
  let gate: Promise<void> = Promise.resolve();
  const unimplemented = () => {
    throw new DomainError("UNIMPLEMENTED", "the fake policy implements StreamWeights only");
  };
  const implementation: UntypedServiceImplementation = {};
  // Every method of the contract answers UNIMPLEMENTED, whatever its shape, except StreamWeights.
  for (const [name, def] of Object.entries(policy.PolicyServiceService) as [string, MethodDefinition<unknown, unknown>][]) {
    if (def.requestStream && def.responseStream) implementation[name] = bidiStream(log, async () => unimplemented());
    else if (def.requestStream) implementation[name] = clientStream(log, async () => unimplemented());
    else if (def.responseStream) implementation[name] = serverStream(log, async () => unimplemented());
    else implementation[name] = unary(log, async () => unimplemented());
  }
  implementation.streamWeights = serverStream(log, async (req: policy.StreamWeightsRequest, send) => {
    calls.push(req.version);
    await gate;
    if (req.model !== policy.ModelKind.MODEL_KIND_POLICY) throw new InvalidArgumentError("model", "the fake policy serves MODEL_KIND_POLICY only");
    const current = Math.max(...versions.keys());
    const version = req.version ?? current;
    const w = versions.get(version);
    if (!w) throw new NotFoundError("version", `${version} is not the current version (${current})`);
    const wire = req.dtype === common.Dtype.DTYPE_FLOAT16 ? "float16" : "float32";
    await sendTensorSet(
      send,
      (chunk): policy.StreamWeightsResponse => ({ chunk }),
      w.tensors,
      { kind: common.TensorSetKind.TENSOR_SET_KIND_WEIGHTS, weights: { modelId: POLICY_MODEL_ID, version, source: "fake" }, modelConfig: modelConfigToProto(w.config) },
      { wireDtype: wire },
    );
  });
  const server = await startServer({ log, services: [{ definition: policy.PolicyServiceService, implementation }] });
  server.setServing(true);
  return {
    server,
    address: server.address,
    calls,
    hold: () => {
      let release!: () => void;
      gate = new Promise<void>((r) => (release = r));
      return () => {
        gate = Promise.resolve();
        release();
      };
    },
    stop: () => server.shutdown(500),
  };
}
