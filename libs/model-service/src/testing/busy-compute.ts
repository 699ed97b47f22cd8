/**
 * A compute worker module for the worker's own tests (../worker.test.ts): a JSON-coded service
 * whose handlers block their thread for as long as the test says, count steps, sum streams all
 * or nothing, fail on request, and end their worker.
 */
import type { ServiceDefinition } from "@grpc/grpc-js";
import { bidiStream, clientStream, serverStream, unary, yieldToEventLoop } from "@rlhf/grpc-kit";
import { InvalidArgumentError } from "@rlhf/errors";
import { countTokens, annotateActiveSpan } from "@rlhf/telemetry";
import type { CreateCompute } from "../worker/host";

const json = { serialize: (v: unknown) => Buffer.from(JSON.stringify(v)), deserialize: (b: Buffer) => JSON.parse(b.toString()) as unknown };
const method = (name: string, requestStream: boolean, responseStream: boolean) => ({
  path: `/rlhf.test.Busy/${name}`,
  requestStream,
  responseStream,
  requestSerialize: json.serialize,
  requestDeserialize: json.deserialize,
  responseSerialize: json.serialize,
  responseDeserialize: json.deserialize,
  originalName: name,
});

export const BUSY_SERVICE: ServiceDefinition = {
  block: method("Block", false, false),
  steps: method("Steps", false, false),
  state: method("State", false, false),
  count: method("Count", false, true),
  sum: method("Sum", true, false),
  echo: method("Echo", true, true),
  fail: method("Fail", false, false),
  exit: method("Exit", false, false),
  info: method("Info", false, false),
};

/** `cfg.gate`: a shared Int32Array; Block spins (blocking its thread) until the test sets gate[0]. */
export const createCompute: CreateCompute<{ gate: Int32Array }> = async ({ cfg, log, serving, backend, backendDetail }) => {
  const state = { total: 0, steps: 0 };
  serving.set(true);
  const implementation = {
    block: unary(log, async () => {
      while (Atomics.load(cfg.gate, 0) === 0) {
        // Synchronous, as one long forward pass on a synchronous backend.
      }
      return { blocked: true };
    }),
    steps: unary(log, async (req: { steps: number; ms: number }, ctx) => {
      for (let i = 0; i < req.steps; i++) {
        const end = Date.now() + req.ms;
        while (Date.now() < end) {
          // One step's work.
        }
        state.steps++;
        await yieldToEventLoop();
        ctx.signal.throwIfAborted();
      }
      return { steps: state.steps };
    }),
    state: unary(log, async () => state),
    count: serverStream(log, async (req: { n: number; bytes: number }, send) => {
      annotateActiveSpan({ "rlhf.test.n": req.n });
      for (let i = 0; i < req.n; i++) await send({ i, pad: "x".repeat(req.bytes) });
    }),
    sum: clientStream(log, async (requests: AsyncIterable<{ x: number }>, ctx) => {
      let s = 0;
      for await (const r of requests) s += r.x;
      state.total += s;
      countTokens("score", s);
      ctx.log.info({ sum: s }, "summed");
      return { total: state.total };
    }),
    echo: bidiStream(log, async (requests: AsyncIterable<{ x: number }>, send) => {
      for await (const r of requests) await send({ x: r.x * 2 });
    }),
    fail: unary(log, async (req: { kind: string }) => {
      if (req.kind === "domain") throw new InvalidArgumentError("kind", "must be anything but domain");
      throw new Error("a plain error in the worker");
    }),
    exit: unary(log, async () => process.exit(7)),
    info: unary(log, async () => ({ backend, backendDetail })),
  };
  return { service: { definition: BUSY_SERVICE, implementation }, dispose: () => undefined };
};
