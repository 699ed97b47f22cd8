/**
 * Builds safetensors bytes by hand from the published layout, independently of ../safetensors.ts:
 * u64 little-endian header length, JSON header, raw little-endian data, in the order given.
 */

export interface HandTensor {
  name: string;
  dtype: string;
  shape: number[];
  /** Raw little-endian bytes of the tensor. */
  bytes: Uint8Array;
}

/** Little-endian float32 bytes of numbers, written with a DataView. */
export function f32Bytes(values: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < values.length; i++) dv.setFloat32(i * 4, values[i], true);
  return out;
}

/**
 * @param pad pad the header with spaces to a multiple of 8 bytes (default false: exercise unaligned data)
 */
export function handWrittenSafetensors(
  tensors: HandTensor[],
  options: { metadata?: Record<string, string>; pad?: boolean } = {},
): Uint8Array {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const t of tensors) {
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + t.bytes.length] };
    offset += t.bytes.length;
  }
  if (options.metadata) header.__metadata__ = options.metadata;
  let json = new TextEncoder().encode(JSON.stringify(header));
  if (options.pad) {
    const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
    padded.set(json);
    json = padded;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const t of tensors) {
    out.set(t.bytes, at);
    at += t.bytes.length;
  }
  return out;
}
