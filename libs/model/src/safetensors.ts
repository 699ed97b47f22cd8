/**
 * The safetensors format (https://github.com/huggingface/safetensors): an 8-byte little-endian
 * u64 header length N, N bytes of JSON header
 * `{"<name>": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {...}}` with
 * offsets relative to the data section, then the data section.
 *
 * Reading decodes F32, F16, BF16 and F64 to float32 and I32, I64 (when in range) to int32. F32 and
 * I32 tensors are zero-copy views of the input bytes when aligned (little-endian hosts). Writing
 * supports F32 and I32, sorted keys, the header padded with spaces to a multiple of 8 bytes.
 */
import { type FileHandle, open, rename, unlink } from "node:fs/promises";
import { endianness } from "node:os";
import { InvalidArgumentError, NotFoundError } from "@rlhf/errors";
import { type HostTensor, type NamedHostTensors, sizeOf } from "@rlhf/compute";

/** Bytes per element of every dtype the format defines (decodable or not), to validate headers. */
const DTYPE_BYTES: Readonly<Record<string, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
  U16: 2,
  I16: 2,
  F16: 2,
  BF16: 2,
  U32: 4,
  I32: 4,
  F32: 4,
  U64: 8,
  I64: 8,
  F64: 8,
};

/** Dtypes `parseSafetensors` decodes. */
export const READABLE_DTYPES = ["F32", "F16", "BF16", "F64", "I32", "I64"] as const;

/** Largest header accepted (the reference implementation's limit). */
export const MAX_HEADER_BYTES = 100_000_000;

const LITTLE_ENDIAN_HOST = endianness() === "LE";

/** One header entry, validated. */
export interface SafetensorsEntry {
  dtype: string;
  shape: number[];
  /** [begin, end) relative to the data section. */
  dataOffsets: [number, number];
}

/** A parsed file: the decoded tensors (in header order) and the `__metadata__` strings. */
export interface SafetensorsFile {
  tensors: NamedHostTensors;
  metadata: Record<string, string>;
}

/** Options of the readers. */
export interface ReadSafetensorsOptions {
  /** Name used in error fields (default "safetensors"; the file readers use the path). */
  source?: string;
  /** Decode only tensors for which this returns true (the others are still validated). */
  include?: (name: string) => boolean;
}

/**
 * Validates a header given as JSON bytes against a data section of `dataBytes` bytes and returns
 * its entries (file order) and metadata. Errors name `<source>[<tensor>]`.
 */
export function parseSafetensorsHeader(
  headerBytes: Uint8Array,
  dataBytes: number,
  source = "safetensors",
): { entries: Map<string, SafetensorsEntry>; metadata: Record<string, string> } {
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(headerBytes.buffer, headerBytes.byteOffset, headerBytes.byteLength).toString("utf8"));
  } catch (e) {
    throw new InvalidArgumentError(source, `header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof json !== "object" || json === null || Array.isArray(json)) {
    throw new InvalidArgumentError(source, "header must be a JSON object");
  }
  const metadata: Record<string, string> = {};
  const entries = new Map<string, SafetensorsEntry>();
  for (const [name, raw] of Object.entries(json as Record<string, unknown>)) {
    const field = `${source}[${name}]`;
    if (name === "__metadata__") {
      if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
        throw new InvalidArgumentError(field, "must be an object of strings");
      }
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== "string") throw new InvalidArgumentError(`${field}.${k}`, `must be a string, got ${JSON.stringify(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
      throw new InvalidArgumentError(field, "entry must be an object {dtype, shape, data_offsets}");
    }
    const { dtype, shape, data_offsets: offsets } = raw as Record<string, unknown>;
    if (typeof dtype !== "string" || !(dtype in DTYPE_BYTES)) {
      throw new InvalidArgumentError(field, `unknown dtype ${JSON.stringify(dtype)}`);
    }
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new InvalidArgumentError(field, `shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    ) {
      throw new InvalidArgumentError(field, `data_offsets must be [begin, end] with 0 <= begin <= end, got ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataBytes) {
      throw new InvalidArgumentError(field, `data_offsets [${begin}, ${end}] run past the data section (${dataBytes} bytes; truncated file?)`);
    }
    const expected = sizeOf(shape as number[]) * DTYPE_BYTES[dtype];
    if (end - begin !== expected) {
      throw new InvalidArgumentError(
        field,
        `holds ${end - begin} bytes but ${dtype} shape [${(shape as number[]).join(", ")}] needs ${expected}`,
      );
    }
    entries.set(name, { dtype, shape: [...(shape as number[])], dataOffsets: [begin, end] });
  }
  // Tensors must not share bytes.
  const byBegin = [...entries].filter(([, e]) => e.dataOffsets[1] > e.dataOffsets[0]);
  byBegin.sort((a, b) => a[1].dataOffsets[0] - b[1].dataOffsets[0]);
  for (let i = 1; i < byBegin.length; i++) {
    if (byBegin[i][1].dataOffsets[0] < byBegin[i - 1][1].dataOffsets[1]) {
      throw new InvalidArgumentError(`${source}[${byBegin[i][0]}]`, `data overlaps tensor ${byBegin[i - 1][0]}`);
    }
  }
  return { entries, metadata };
}

/** Reads the u64 header length and checks it against the total size. */
function headerLength(prefix: Uint8Array, totalBytes: number, source: string): number {
  if (totalBytes < 8 || prefix.byteLength < 8) {
    throw new InvalidArgumentError(source, `too short for a safetensors file (${totalBytes} bytes)`);
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n < 2n || n > BigInt(MAX_HEADER_BYTES)) {
    throw new InvalidArgumentError(source, `header length ${n} is not in 2..${MAX_HEADER_BYTES}`);
  }
  if (n > BigInt(totalBytes - 8)) {
    throw new InvalidArgumentError(source, `header length ${n} exceeds the ${totalBytes - 8} bytes after the prefix (truncated file?)`);
  }
  return Number(n);
}

/** `bytes[begin, end)` as a view when aligned to `align` (and the host is little-endian), else a copy. */
function alignedBytes(data: Uint8Array, begin: number, end: number, align: number): Uint8Array {
  const view = data.subarray(begin, end);
  if (LITTLE_ENDIAN_HOST && view.byteOffset % align === 0) return view;
  const copy = new Uint8Array(new ArrayBuffer(end - begin));
  copy.set(view);
  if (!LITTLE_ENDIAN_HOST) {
    const b = Buffer.from(copy.buffer);
    if (align === 2) b.swap16();
    else if (align === 4) b.swap32();
    else if (align === 8) b.swap64();
  }
  return copy;
}

/** IEEE half to float32, via a 65536-entry table built on first use. */
let halfTable: Float32Array | undefined;
function halfToFloatTable(): Float32Array {
  if (halfTable) return halfTable;
  halfTable = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    let v: number;
    if (exp === 0) v = frac * 2 ** -24; // zero and subnormals
    else if (exp === 31) v = frac === 0 ? Infinity : NaN;
    else v = (1 + frac / 1024) * 2 ** (exp - 15);
    halfTable[h] = sign * v;
  }
  return halfTable;
}

function decodeTensor(name: string, e: SafetensorsEntry, data: Uint8Array, source: string): HostTensor {
  const [begin, end] = e.dataOffsets;
  const n = sizeOf(e.shape);
  const shape = e.shape;
  switch (e.dtype) {
    case "F32": {
      const b = alignedBytes(data, begin, end, 4);
      return { dtype: "float32", shape, data: new Float32Array(b.buffer, b.byteOffset, n) };
    }
    case "I32": {
      const b = alignedBytes(data, begin, end, 4);
      return { dtype: "int32", shape, data: new Int32Array(b.buffer, b.byteOffset, n) };
    }
    case "F16": {
      const b = alignedBytes(data, begin, end, 2);
      const src = new Uint16Array(b.buffer, b.byteOffset, n);
      const table = halfToFloatTable();
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = table[src[i]];
      return { dtype: "float32", shape, data: out };
    }
    case "BF16": {
      // bfloat16 is the top half of a float32.
      const b = alignedBytes(data, begin, end, 2);
      const src = new Uint16Array(b.buffer, b.byteOffset, n);
      const out = new Float32Array(n);
      const bits = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) bits[i] = src[i] << 16;
      return { dtype: "float32", shape, data: out };
    }
    case "F64": {
      const b = alignedBytes(data, begin, end, 8);
      return { dtype: "float32", shape, data: new Float32Array(new Float64Array(b.buffer, b.byteOffset, n)) };
    }
    case "I64": {
      // Little-endian halves: in int32 range exactly when the high word is the low word's sign.
      const b = alignedBytes(data, begin, end, 8);
      const words = new Int32Array(b.buffer, b.byteOffset, 2 * n);
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const lo = words[2 * i];
        if (words[2 * i + 1] !== lo >> 31) {
          throw new InvalidArgumentError(`${source}[${name}]`, `I64 value at flat index ${i} does not fit in int32`);
        }
        out[i] = lo;
      }
      return { dtype: "int32", shape, data: out };
    }
    default:
      throw new InvalidArgumentError(`${source}[${name}]`, `dtype ${e.dtype} is not supported (readable: ${READABLE_DTYPES.join(", ")})`);
  }
}

/**
 * Parses a whole safetensors file held in memory. F32/I32 results may be views of `bytes`: do not
 * modify `bytes` while they are in use.
 */
export function parseSafetensors(bytes: Uint8Array, options: ReadSafetensorsOptions = {}): SafetensorsFile {
  const source = options.source ?? "safetensors";
  const n = headerLength(bytes, bytes.byteLength, source);
  const data = bytes.subarray(8 + n);
  return decodeAll(bytes.subarray(8, 8 + n), data, source, options.include);
}

function decodeAll(
  headerBytes: Uint8Array,
  data: Uint8Array,
  source: string,
  include: ((name: string) => boolean) | undefined,
): SafetensorsFile {
  const { entries, metadata } = parseSafetensorsHeader(headerBytes, data.byteLength, source);
  const tensors: NamedHostTensors = new Map();
  for (const [name, e] of entries) {
    if (include && !include(name)) continue;
    tensors.set(name, decodeTensor(name, e, data, source));
  }
  return { tensors, metadata };
}

/** Fills `into` from `position` (a single read call may return fewer bytes). */
async function readFully(fh: FileHandle, into: Uint8Array, position: number): Promise<void> {
  const CHUNK = 1 << 30; // one read() may not exceed 2 GiB
  let done = 0;
  while (done < into.byteLength) {
    const want = Math.min(CHUNK, into.byteLength - done);
    const { bytesRead } = await fh.read(into, done, want, position + done);
    if (bytesRead === 0) throw new Error("unexpected end of file");
    done += bytesRead;
  }
}

/**
 * Reads a safetensors file: header first, then the data section into one buffer (each byte read
 * once). Missing file: NotFoundError naming the path; malformed: InvalidArgumentError.
 */
export async function readSafetensorsFile(path: string, options: ReadSafetensorsOptions = {}): Promise<SafetensorsFile> {
  const source = options.source ?? path;
  let fh;
  try {
    fh = await open(path, "r");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new NotFoundError(path, "no such file");
    throw e;
  }
  try {
    const size = (await fh.stat()).size;
    const prefix = new Uint8Array(8);
    if (size >= 8) await readFully(fh, prefix, 0);
    const n = headerLength(prefix, size, source);
    const header = new Uint8Array(n);
    await readFully(fh, header, 8);
    // A fresh ArrayBuffer (not Buffer's pool) so that the data section starts 8-byte aligned.
    const data = new Uint8Array(new ArrayBuffer(size - 8 - n));
    await readFully(fh, data, 8 + n);
    return decodeAll(header, data, source, options.include);
  } finally {
    await fh.close();
  }
}

/** Checks names, dtypes and sizes before writing; returns names sorted. */
function checkWritable(tensors: NamedHostTensors): string[] {
  const names = [...tensors.keys()].sort();
  for (const name of names) {
    const t = tensors.get(name) as HostTensor;
    if (name === "" || name === "__metadata__") throw new InvalidArgumentError("tensors", `invalid tensor name ${JSON.stringify(name)}`);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new InvalidArgumentError(name, `invalid shape [${t.shape.join(", ")}]`);
    }
    const okType = t.dtype === "float32" ? t.data instanceof Float32Array : t.dtype === "int32" && t.data instanceof Int32Array;
    if (!okType) throw new InvalidArgumentError(name, `dtype ${t.dtype} does not match its data array`);
    if (t.data.length !== sizeOf(t.shape)) {
      throw new InvalidArgumentError(name, `data has ${t.data.length} values, shape [${t.shape.join(", ")}] needs ${sizeOf(t.shape)}`);
    }
  }
  return names;
}

/** The 8-byte prefix plus the JSON header, padded with spaces so the data starts at a multiple of 8. */
function encodeHeader(tensors: NamedHostTensors, names: string[], metadata: Record<string, string> | undefined): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") throw new InvalidArgumentError(`metadata.${k}`, "must be a string");
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const name of names) {
    const t = tensors.get(name) as HostTensor;
    const end = offset + t.data.byteLength;
    header[name] = { dtype: t.dtype === "float32" ? "F32" : "I32", shape: t.shape, data_offsets: [offset, end] };
    offset = end;
  }
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const out = Buffer.alloc(8 + padded, 0x20);
  out.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(out, 8);
  return out;
}

/** Little-endian bytes of a tensor's data (a view on little-endian hosts). */
function tensorBytes(t: HostTensor): Buffer {
  const b = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return LITTLE_ENDIAN_HOST ? b : Buffer.from(b).swap32();
}

/** A whole safetensors file in memory (F32 / I32 tensors, keys sorted, optional `__metadata__`). */
export function serializeSafetensors(tensors: NamedHostTensors, metadata?: Record<string, string>): Buffer {
  const names = checkWritable(tensors);
  return Buffer.concat([encodeHeader(tensors, names, metadata), ...names.map((n) => tensorBytes(tensors.get(n) as HostTensor))]);
}

/**
 * Writes a safetensors file tensor by tensor (no whole-file copy in memory), to a temporary name
 * first and renamed into place, so readers never see a partial file.
 */
export async function writeSafetensorsFile(path: string, tensors: NamedHostTensors, metadata?: Record<string, string>): Promise<void> {
  const names = checkWritable(tensors);
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fh = await open(tmp, "w");
  try {
    await fh.write(encodeHeader(tensors, names, metadata));
    for (const name of names) {
      const bytes = tensorBytes(tensors.get(name) as HostTensor);
      let done = 0;
      while (done < bytes.byteLength) {
        const { bytesWritten } = await fh.write(bytes, done, Math.min(1 << 30, bytes.byteLength - done));
        done += bytesWritten;
      }
    }
    await fh.close();
    await rename(tmp, path);
  } catch (e) {
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}
