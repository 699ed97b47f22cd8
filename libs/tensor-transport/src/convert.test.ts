import { before, test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import { common } from "@rlhf/proto";
import { InvalidArgumentError } from "@rlhf/errors";
import { initBackend, type HostTensor } from "@rlhf/compute";
import { bytesToHost, elementSize, hostToBytes, hostToProto, hostToTf, protoToHost, tfToHost, wireDtypeOf } from "./convert";

const { DTYPE_UNSPECIFIED, DTYPE_FLOAT32, DTYPE_INT32, DTYPE_FLOAT16 } = common.Dtype;

before(async () => {
  await initBackend();
});

/** Asserts `f` throws an InvalidArgumentError whose message starts with `field: ` and matches `re`. */
function rejects(f: () => unknown, field: string, re: RegExp): void {
  assert.throws(f, (err: unknown) => {
    assert.ok(err instanceof InvalidArgumentError, String(err));
    assert.equal(err.code, "INVALID_ARGUMENT");
    assert.equal(err.field, field);
    assert.ok(err.message.startsWith(`${field}: `), err.message);
    assert.match(err.message, re);
    return true;
  });
}

/** Encodes and decodes through the real protobuf codec, as on the wire. */
function viaWire(p: common.Tensor): common.Tensor {
  return common.Tensor.decode(common.Tensor.encode(p).finish());
}

test("elementSize and wireDtypeOf", () => {
  assert.equal(elementSize(DTYPE_FLOAT32), 4);
  assert.equal(elementSize(DTYPE_INT32), 4);
  assert.equal(elementSize(DTYPE_FLOAT16), 2);
  assert.throws(() => elementSize(DTYPE_UNSPECIFIED), InvalidArgumentError);
  assert.throws(() => elementSize(7 as common.Dtype), /unknown dtype 7/);
  const f: HostTensor = { dtype: "float32", shape: [1], data: new Float32Array(1) };
  const i: HostTensor = { dtype: "int32", shape: [1], data: new Int32Array(1) };
  assert.equal(wireDtypeOf(f), DTYPE_FLOAT32);
  assert.equal(wireDtypeOf(f, "float16"), DTYPE_FLOAT16);
  assert.equal(wireDtypeOf(i, "float16"), DTYPE_INT32);
});

test("float32 round trip through the protobuf codec, bytes little-endian", () => {
  const t: HostTensor = { dtype: "float32", shape: [2, 3], data: new Float32Array([1, -2.5, 3.25, 1e-30, -0, 3.4e38]) };
  const p = hostToProto(t);
  assert.equal(p.dtype, DTYPE_FLOAT32);
  assert.deepEqual(p.shape, [2, 3]);
  assert.equal(p.data.length, 24);
  // 1.0f little-endian is 00 00 80 3f.
  assert.deepEqual([...p.data.subarray(0, 4)], [0x00, 0x00, 0x80, 0x3f]);
  assert.equal(p.data.readFloatLE(4), -2.5);
  const back = protoToHost(viaWire(p), "tensors[0]");
  assert.equal(back.dtype, "float32");
  assert.deepEqual(back.shape, [2, 3]);
  assert.ok(back.data instanceof Float32Array);
  assert.deepEqual(Array.from(back.data), Array.from(t.data));
  assert.ok(Object.is(back.data[4], -0));
});

test("int32 round trip, including extremes; float16 is ignored for int32", () => {
  const t: HostTensor = { dtype: "int32", shape: [5], data: new Int32Array([0, -1, 2147483647, -2147483648, 50256]) };
  const p = hostToProto(t, { wireDtype: "float16" });
  assert.equal(p.dtype, DTYPE_INT32);
  assert.deepEqual([...p.data.subarray(4, 8)], [0xff, 0xff, 0xff, 0xff]);
  assert.equal(p.data.readInt32LE(12), -2147483648);
  const back = protoToHost(viaWire(p), "tokens");
  assert.equal(back.dtype, "int32");
  assert.ok(back.data instanceof Int32Array);
  assert.deepEqual(Array.from(back.data), Array.from(t.data));
});

test("float16 round trip: half the bytes, values rounded to the nearest half, decoded to float32", () => {
  const values = [0, 1, -2, 0.1, 65504, 6.1e-5, 2 ** -24, 1 / 3];
  const t: HostTensor = { dtype: "float32", shape: [2, 2, 2], data: new Float32Array(values) };
  const p = hostToProto(t, { wireDtype: "float16" });
  assert.equal(p.dtype, DTYPE_FLOAT16);
  assert.equal(p.data.length, 16);
  assert.equal(p.data.readUInt16LE(2), 0x3c00); // 1.0
  assert.equal(p.data.readUInt16LE(6), 0x2e66); // 0.1
  const back = protoToHost(viaWire(p), "weights[\"wte\"]");
  assert.equal(back.dtype, "float32");
  assert.deepEqual(back.shape, [2, 2, 2]);
  assert.deepEqual(Array.from(back.data), [0, 1, -2, 0.0999755859375, 65504, 6.097555160522461e-5, 2 ** -24, 0.333251953125]);
});

test("scalars and zero-size tensors", () => {
  for (const wireDtype of ["float32", "float16"] as const) {
    const s = protoToHost(viaWire(hostToProto({ dtype: "float32", shape: [], data: new Float32Array([7.5]) }, { wireDtype })), "x");
    assert.deepEqual(s.shape, []);
    assert.deepEqual(Array.from(s.data), [7.5]);
    for (const shape of [[0], [3, 0], [0, 4, 2]]) {
      const z = protoToHost(viaWire(hostToProto({ dtype: "float32", shape, data: new Float32Array(0) }, { wireDtype })), "x");
      assert.deepEqual(z.shape, shape);
      assert.equal(z.data.length, 0);
    }
  }
  const zi = protoToHost(viaWire(hostToProto({ dtype: "int32", shape: [2, 0], data: new Int32Array(0) })), "x");
  assert.equal(zi.dtype, "int32");
  assert.deepEqual(zi.shape, [2, 0]);
  // Rank 8 is allowed.
  const r8 = bytesToHost(new Uint8Array(4), DTYPE_FLOAT32, [1, 1, 1, 1, 1, 1, 1, 1], "x");
  assert.equal(r8.shape.length, 8);
});

test("unaligned bytes decode correctly (copied), aligned little-endian float32 is zero-copy", () => {
  const buf = new Uint8Array(4 * 3 + 1);
  const dv = new DataView(buf.buffer);
  [1.5, -3, 8].forEach((v, i) => dv.setFloat32(1 + 4 * i, v, true));
  const unaligned = bytesToHost(buf.subarray(1), DTYPE_FLOAT32, [3], "x");
  assert.deepEqual(Array.from(unaligned.data), [1.5, -3, 8]);
  const aligned = new Uint8Array(12);
  aligned.set(buf.subarray(1));
  const h = bytesToHost(aligned, DTYPE_FLOAT32, [3], "x");
  assert.equal(h.data.buffer, aligned.buffer);
  const i16 = new Uint8Array(7);
  i16.set([0x00, 0x3c, 0x00, 0xc0, 0x00, 0x00], 1); // halves 1, -2, 0 at an odd offset
  assert.deepEqual(Array.from(bytesToHost(i16.subarray(1), DTYPE_FLOAT16, [3], "x").data), [1, -2, 0]);
});

test("hostToBytes: float32/int32 share the host memory; float16 is new little-endian bytes", () => {
  const t: HostTensor = { dtype: "float32", shape: [2], data: new Float32Array([1, 2]) };
  const b = hostToBytes(t, "float32");
  assert.equal(b.buffer, t.data.buffer);
  assert.equal(b.readFloatLE(4), 2);
  const h = hostToBytes(t, "float16");
  assert.deepEqual([...h], [0x00, 0x3c, 0x00, 0x40]);
  assert.deepEqual(Array.from(bytesToHost(h, DTYPE_FLOAT16, [2], "x").data), [1, 2]);
});

test("validation: dtype unspecified or unknown", () => {
  const data = Buffer.alloc(4);
  rejects(() => protoToHost({ dtype: DTYPE_UNSPECIFIED, shape: [1], data }, "tensors[3]"), "tensors[3].dtype", /DTYPE_UNSPECIFIED/);
  rejects(() => protoToHost({ dtype: 9 as common.Dtype, shape: [1], data }, "tensors[3]"), "tensors[3].dtype", /unknown dtype 9/);
  // A dtype value this build does not know survives the codec and is still rejected.
  rejects(() => protoToHost(viaWire({ dtype: 9 as common.Dtype, shape: [1], data }), "t"), "t.dtype", /unknown dtype 9/);
});

test("validation: rank over 8 and bad dimensions", () => {
  rejects(() => bytesToHost(new Uint8Array(4), DTYPE_FLOAT32, [1, 1, 1, 1, 1, 1, 1, 1, 1], "tensors[0]"), "tensors[0].shape", /rank 9 exceeds the maximum of 8/);
  rejects(() => bytesToHost(new Uint8Array(0), DTYPE_FLOAT32, [2, -1], "x"), "x.shape[1]", /non-negative integer, got -1/);
  rejects(() => bytesToHost(new Uint8Array(0), DTYPE_FLOAT32, [1.5], "x"), "x.shape[0]", /got 1.5/);
});

test("validation: data length must be elements x element size, both numbers in the message", () => {
  rejects(
    () => protoToHost({ dtype: DTYPE_FLOAT32, shape: [2, 3], data: Buffer.alloc(20) }, "tensors[3]"),
    "tensors[3].data",
    /has 20 bytes, but shape \[2, 3\] of DTYPE_FLOAT32 needs 24 \(6 elements x 4 bytes\)/,
  );
  rejects(() => protoToHost({ dtype: DTYPE_FLOAT16, shape: [3], data: Buffer.alloc(12) }, "g"), "g.data", /has 12 bytes, .* needs 6 \(3 elements x 2 bytes\)/);
  rejects(() => protoToHost({ dtype: DTYPE_INT32, shape: [], data: Buffer.alloc(0) }, "s"), "s.data", /has 0 bytes, but shape \[\] of DTYPE_INT32 needs 4/);
  // Huge shapes give exact numbers, not floating-point noise.
  rejects(
    () => protoToHost({ dtype: DTYPE_FLOAT32, shape: [4294967295, 4294967295, 4294967295], data: Buffer.alloc(8) }, "x"),
    "x.data",
    /needs 316912649835696421541200789500 \(79228162458924105385300197375 elements x 4 bytes\)/,
  );
});

test("validation: size limit", () => {
  const data = Buffer.alloc(4 * 1000);
  assert.equal(protoToHost({ dtype: DTYPE_FLOAT32, shape: [1000], data }, "x", { maxBytes: 4000 }).data.length, 1000);
  rejects(() => protoToHost({ dtype: DTYPE_FLOAT32, shape: [1000], data }, "tensors[1]", { maxBytes: 3999 }), "tensors[1]", /decodes to 4000 bytes, over the limit of 3999 bytes/);
  // float16 counts as the float32 it decodes to; a huge shape is refused before its data is looked at.
  rejects(() => protoToHost({ dtype: DTYPE_FLOAT16, shape: [1000], data: Buffer.alloc(2000) }, "x", { maxBytes: 2000 }), "x", /decodes to 4000 bytes/);
  rejects(() => protoToHost({ dtype: DTYPE_FLOAT32, shape: [1e9, 1e9], data: Buffer.alloc(0) }, "x", { maxBytes: 1 << 30 }), "x", /over the limit/);
});

test("validation: NaN and infinite floats are rejected with the index of the first", () => {
  const f32 = (vals: number[]) => ({ dtype: DTYPE_FLOAT32, shape: [vals.length], data: Buffer.from(new Float32Array(vals).buffer) });
  rejects(() => protoToHost(f32([1, 2, NaN, Infinity]), "tensors[3]"), "tensors[3].data", /element 2 is NaN; tensors must be finite/);
  rejects(() => protoToHost(f32([1, -Infinity, NaN]), "x"), "x.data", /element 1 is infinite/);
  const f16 = (halves: number[]) => ({ dtype: DTYPE_FLOAT16, shape: [halves.length], data: Buffer.from(new Uint16Array(halves).buffer) });
  rejects(() => protoToHost(f16([0x3c00, 0x7c00]), "x"), "x.data", /element 1 is infinite/);
  rejects(() => protoToHost(f16([0x3c00, 0x3c00, 0xfe00]), "x"), "x.data", /element 2 is NaN/);
  // Integers have no NaN: every bit pattern is fine.
  assert.equal(protoToHost({ dtype: DTYPE_INT32, shape: [1], data: Buffer.from(new Float32Array([NaN]).buffer) }, "x").data.length, 1);
});

test("the sender refuses what the receiver would reject (float16 overflow, non-finite)", () => {
  const t = (v: number): HostTensor => ({ dtype: "float32", shape: [2], data: new Float32Array([1, v]) });
  assert.throws(() => hostToProto(t(70000), { wireDtype: "float16" }), /element 1 = 70000 overflows float16 \(largest finite 65504\)/);
  assert.throws(() => hostToProto(t(NaN), { wireDtype: "float16" }), /element 1 is NaN/);
  assert.throws(() => hostToProto({ dtype: "float32", shape: [3], data: new Float32Array(2) }), /needs 3 elements, data has 2/);
  assert.throws(() => hostToProto({ dtype: "int32", shape: [2], data: new Float32Array(2) }), /dtype int32 holds a Float32Array/);
});

test("tf round trips on the default backend and cpu, no leaked tensors", async () => {
  const active = tf.getBackend();
  for (const backend of [active, "cpu"]) {
    assert.ok(await tf.setBackend(backend));
    const before = tf.memory().numTensors;
    const host: HostTensor = { dtype: "float32", shape: [2, 2], data: new Float32Array([1, 2, 3, 4]) };
    const t = hostToTf(host);
    assert.deepEqual(t.shape, [2, 2]);
    assert.equal(t.dtype, "float32");
    const back = tfToHost(t);
    t.dispose();
    assert.deepEqual(back, host);
    // tfToHost copies: changing the host tensor does not change the tfjs tensor.
    const u = hostToTf({ dtype: "int32", shape: [3], data: new Int32Array([5, 6, 7]) });
    const hu = tfToHost(u);
    hu.data[0] = 99;
    assert.deepEqual(Array.from(u.dataSync()), [5, 6, 7]);
    assert.equal(hu.dtype, "int32");
    u.dispose();
    const scalar = hostToTf({ dtype: "float32", shape: [], data: new Float32Array([2.5]) });
    assert.deepEqual(tfToHost(scalar), { dtype: "float32", shape: [], data: new Float32Array([2.5]) });
    scalar.dispose();
    const b = tf.tensor1d([1, 0], "bool");
    assert.throws(() => tfToHost(b), /only float32 and int32 tensors convert to host tensors, got bool/);
    b.dispose();
    assert.throws(() => hostToTf({ dtype: "float32", shape: [5], data: new Float32Array(4) }), /needs 5 elements/);
    assert.equal(tf.memory().numTensors, before, backend);
  }
  assert.ok(await tf.setBackend(active));
});

test("wire -> host -> tf -> host -> wire keeps every bit of float32 data", () => {
  const n = 1000;
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = Math.sin(i) * 10 ** ((i % 20) - 10);
  const p = hostToProto({ dtype: "float32", shape: [10, 100], data });
  const t = hostToTf(protoToHost(viaWire(p), "x"));
  const again = hostToProto(tfToHost(t));
  t.dispose();
  assert.ok(Buffer.compare(again.data, p.data) === 0);
});
