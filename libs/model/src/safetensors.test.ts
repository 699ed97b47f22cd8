import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvalidArgumentError, NotFoundError } from "@rlhf/errors";
import type { NamedHostTensors } from "@rlhf/compute";
import { parseSafetensors, readSafetensorsFile, serializeSafetensors, writeSafetensorsFile } from "./safetensors";
import { f32Bytes, handWrittenSafetensors } from "./testing/hand-safetensors";

function rejects(fn: () => unknown, field: string, message?: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof InvalidArgumentError, `expected InvalidArgumentError, got ${String(e)}`);
    assert.equal(e.field, field);
    if (message) assert.match(e.message, message);
    return true;
  });
}

function u16le(values: number[]): Uint8Array {
  const out = new Uint8Array(values.length * 2);
  const dv = new DataView(out.buffer);
  values.forEach((v, i) => dv.setUint16(i * 2, v, true));
  return out;
}

function i64le(values: bigint[]): Uint8Array {
  const out = new Uint8Array(values.length * 8);
  const dv = new DataView(out.buffer);
  values.forEach((v, i) => dv.setBigInt64(i * 8, v, true));
  return out;
}

test("reads a hand-written file: F32, I32, F16, BF16, F64, I64, scalars, metadata, unaligned data", () => {
  const i32 = new Uint8Array(12);
  [7, -3, 2147483647].forEach((v, i) => new DataView(i32.buffer).setInt32(i * 4, v, true));
  const f64 = new Uint8Array(16);
  new DataView(f64.buffer).setFloat64(0, 0.1, true);
  new DataView(f64.buffer).setFloat64(8, -2.5, true);
  const bytes = handWrittenSafetensors(
    [
      { name: "f16", dtype: "F16", shape: [7], bytes: u16le([0x3c00, 0xc000, 0x7bff, 0x0001, 0x7c00, 0x8000, 0x3555]) },
      { name: "a", dtype: "F32", shape: [2, 3], bytes: f32Bytes([1, -2, 3.5, 0.1, 1e-30, -0]) },
      { name: "bf16", dtype: "BF16", shape: [3], bytes: u16le([0x3f80, 0x4049, 0xbf00]) },
      { name: "i32", dtype: "I32", shape: [3], bytes: i32 },
      { name: "f64", dtype: "F64", shape: [2], bytes: f64 },
      { name: "i64", dtype: "I64", shape: [1, 3], bytes: i64le([5n, -1n, -2147483648n]) },
      { name: "scalar", dtype: "F32", shape: [], bytes: f32Bytes([42]) },
      { name: "empty", dtype: "F32", shape: [0, 4], bytes: new Uint8Array(0) },
    ],
    { metadata: { format: "pt", note: "hand" } },
  );
  // Shifted copies put F32/I32/F64 data at every alignment (views when aligned, copies otherwise).
  for (let shift = 1; shift < 8; shift++) {
    const moved = new Uint8Array(bytes.length + shift);
    moved.set(bytes, shift);
    assert.deepEqual(parseSafetensors(moved.subarray(shift)), parseSafetensors(bytes), `shift ${shift}`);
  }
  const { tensors, metadata } = parseSafetensors(bytes);
  assert.deepEqual(metadata, { format: "pt", note: "hand" });
  assert.deepEqual([...tensors.keys()], ["f16", "a", "bf16", "i32", "f64", "i64", "scalar", "empty"]);
  const get = (n: string): { dtype: string; shape: number[]; values: number[] } => {
    const t = tensors.get(n);
    assert.ok(t, n);
    return { dtype: t.dtype, shape: t.shape, values: Array.from(t.data) };
  };
  assert.deepEqual(get("a"), { dtype: "float32", shape: [2, 3], values: [1, -2, 3.5, Math.fround(0.1), Math.fround(1e-30), -0] });
  assert.deepEqual(get("f16"), {
    dtype: "float32",
    shape: [7],
    values: [1, -2, 65504, 2 ** -24, Infinity, -0, 0.333251953125], // 0x3555: the half nearest 1/3
  });
  assert.deepEqual(get("bf16").values, [1, 3.140625, -0.5]);
  assert.deepEqual(get("i32"), { dtype: "int32", shape: [3], values: [7, -3, 2147483647] });
  assert.deepEqual(get("f64"), { dtype: "float32", shape: [2], values: [Math.fround(0.1), -2.5] });
  assert.deepEqual(get("i64"), { dtype: "int32", shape: [1, 3], values: [5, -1, -2147483648] });
  assert.deepEqual(get("scalar"), { dtype: "float32", shape: [], values: [42] });
  assert.deepEqual(get("empty"), { dtype: "float32", shape: [0, 4], values: [] });
});

test("writes the published layout: u64 LE length, sorted keys, space padding to 8, metadata, raw LE data", () => {
  const tensors: NamedHostTensors = new Map([
    ["zeta", { dtype: "float32" as const, shape: [3], data: Float32Array.from([1.5, -2, 1e-7]) }],
    ["alpha.weight", { dtype: "int32" as const, shape: [2, 1], data: Int32Array.from([-5, 9]) }],
  ]);
  const bytes = serializeSafetensors(tensors, { format: "pt" });
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  assert.equal((8 + n) % 8, 0);
  const headerText = bytes.subarray(8, 8 + n).toString("utf8");
  assert.match(headerText, / *$/);
  const header = JSON.parse(headerText) as Record<string, unknown>;
  assert.deepEqual(Object.keys(header), ["__metadata__", "alpha.weight", "zeta"]);
  assert.deepEqual(header.__metadata__, { format: "pt" });
  assert.deepEqual(header["alpha.weight"], { dtype: "I32", shape: [2, 1], data_offsets: [0, 8] });
  assert.deepEqual(header.zeta, { dtype: "F32", shape: [3], data_offsets: [8, 20] });
  assert.equal(bytes.length, 8 + n + 20);
  const data = new DataView(bytes.buffer, bytes.byteOffset + 8 + n);
  assert.equal(data.getInt32(0, true), -5);
  assert.equal(data.getInt32(4, true), 9);
  assert.equal(data.getFloat32(8, true), 1.5);
  assert.equal(data.getFloat32(16, true), Math.fround(1e-7));

  const back = parseSafetensors(bytes);
  assert.deepEqual(back.tensors.get("zeta"), tensors.get("zeta"));
  assert.deepEqual(back.tensors.get("alpha.weight"), tensors.get("alpha.weight"));

  rejects(
    () => serializeSafetensors(new Map([["x", { dtype: "float32", shape: [2], data: new Float32Array(3) }]])),
    "x",
    /3 values/,
  );
});

test("file round trip is bit-identical; missing file is NotFound", async () => {
  const dir = await mkdtemp(join(tmpdir(), "safetensors-"));
  try {
    const data = new Float32Array(1000);
    for (let i = 0; i < data.length; i++) data[i] = Math.sin(i) * 1e3 ** ((i % 7) - 3);
    data[3] = Number.NaN;
    const tensors: NamedHostTensors = new Map([["w", { dtype: "float32", shape: [10, 100], data }]]);
    const path = join(dir, "m.safetensors");
    await writeSafetensorsFile(path, tensors, { format: "pt" });
    const back = await readSafetensorsFile(path);
    const w = back.tensors.get("w");
    assert.ok(w);
    assert.deepEqual(w.shape, [10, 100]);
    assert.ok(Buffer.from(w.data.buffer, w.data.byteOffset, w.data.byteLength).equals(Buffer.from(data.buffer)));
    assert.deepEqual(back.metadata, { format: "pt" });
    assert.ok((await readFile(path)).equals(serializeSafetensors(tensors, { format: "pt" })));

    await assert.rejects(readSafetensorsFile(join(dir, "nope.safetensors")), (e: unknown) => {
      assert.ok(e instanceof NotFoundError);
      assert.match(e.message, /nope\.safetensors/);
      return true;
    });
    const truncated = join(dir, "cut.safetensors");
    const full = await readFile(path);
    await writeFile(truncated, full.subarray(0, full.length - 1));
    await assert.rejects(readSafetensorsFile(truncated), (e: unknown) => {
      assert.ok(e instanceof InvalidArgumentError);
      assert.equal(e.field, `${truncated}[w]`);
      assert.match(e.message, /past the data section/);
      return true;
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("malformed files are rejected with the tensor named", () => {
  const good = handWrittenSafetensors([
    { name: "a", dtype: "F32", shape: [2], bytes: f32Bytes([1, 2]) },
    { name: "b", dtype: "F32", shape: [1], bytes: f32Bytes([3]) },
  ]);
  rejects(() => parseSafetensors(good.subarray(0, good.length - 1)), "safetensors[b]", /past the data section/);
  rejects(() => parseSafetensors(good.subarray(0, 20)), "safetensors", /exceeds/);
  rejects(() => parseSafetensors(good.subarray(0, 5)), "safetensors", /too short/);

  const huge = new Uint8Array(good);
  new DataView(huge.buffer).setBigUint64(0, 1n << 60n, true);
  rejects(() => parseSafetensors(huge), "safetensors", /header length/);

  const withHeader = (header: string, dataBytes = 8): Uint8Array => {
    const json = new TextEncoder().encode(header);
    const out = new Uint8Array(8 + json.length + dataBytes);
    new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
    out.set(json, 8);
    return out;
  };
  rejects(() => parseSafetensors(withHeader('{"a": {"dtype": "F32"')), "safetensors", /not valid JSON/);
  rejects(() => parseSafetensors(withHeader("[1, 2]")), "safetensors", /JSON object/);
  rejects(
    () => parseSafetensors(withHeader('{"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}')),
    "safetensors[a]",
    /holds 8 bytes but F32 shape \[3\] needs 12/,
  );
  rejects(
    () => parseSafetensors(withHeader('{"a": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 8]}}')),
    "safetensors[a]",
    /unknown dtype/,
  );
  rejects(
    () => parseSafetensors(withHeader('{"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}')),
    "safetensors[a]",
    /shape/,
  );
  rejects(
    () => parseSafetensors(withHeader('{"a": {"dtype": "F32", "shape": [2], "data_offsets": [8, 0]}}')),
    "safetensors[a]",
    /data_offsets/,
  );
  rejects(
    () =>
      parseSafetensors(
        withHeader('{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}'),
      ),
    "safetensors[b]",
    /overlaps tensor a/,
  );
  rejects(() => parseSafetensors(withHeader('{"__metadata__": {"format": 1}}')), "safetensors[__metadata__].format", /string/);

  const bigI64 = handWrittenSafetensors([{ name: "ids", dtype: "I64", shape: [2], bytes: i64le([1n, 1n << 40n]) }]);
  rejects(() => parseSafetensors(bigI64), "safetensors[ids]", /flat index 1 does not fit in int32/);

  // Undecodable dtypes are an error only for tensors that are asked for.
  const mask = handWrittenSafetensors([
    { name: "mask", dtype: "BOOL", shape: [2, 2], bytes: Uint8Array.from([1, 0, 1, 1]) },
    { name: "w", dtype: "F32", shape: [1], bytes: f32Bytes([0.5]) },
  ]);
  rejects(() => parseSafetensors(mask, { source: "m.st" }), "m.st[mask]", /BOOL is not supported/);
  assert.deepEqual([...parseSafetensors(mask, { include: (n) => n !== "mask" }).tensors.keys()], ["w"]);
});
