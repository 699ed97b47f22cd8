/**
 * A tensor held in host memory as a typed array: the common currency between checkpoint files,
 * the wire (proto Tensor / tensor-set streams) and tfjs tensors on any backend.
 */
export type HostDtype = "float32" | "int32";

/** Dense row-major tensor in host memory. `data.length` equals the product of `shape`. */
export interface HostTensor {
  dtype: HostDtype;
  shape: number[];
  data: Float32Array | Int32Array;
}

/** An ordered set of named host tensors (weights or gradients, GPT-2 names). */
export type NamedHostTensors = Map<string, HostTensor>;

/** Number of elements of a shape (1 for a scalar). */
export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
