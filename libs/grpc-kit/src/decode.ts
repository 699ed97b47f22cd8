/**
 * Requests that fail to decode are the client's fault: INVALID_ARGUMENT naming the field and the
 * decoder's reason, never INTERNAL. grpc-js answers INTERNAL ("Error deserializing request") when a
 * method's deserializer throws, before any handler runs — for well-formed protobuf too, e.g. a
 * 64-bit integer past 2^53 that the generated decoder refuses. So the deserializers registered by
 * {@link startServer} never throw: they return a {@link DecodeFailure}, which the kit's handler
 * wrappers turn into INVALID_ARGUMENT before the service's handler sees it. The field is found by
 * walking the bytes again with the contract's descriptors (only after a failure): the first 64-bit
 * integer past 2^53 − 1, or the field inside which the message breaks off.
 */
import { readFileSync } from "node:fs";
import type { ServiceDefinition } from "@grpc/grpc-js";
import { loadFileDescriptorSetFromBuffer, type PackageDefinition } from "@grpc/proto-loader";
import { InvalidArgumentError } from "@rlhf/errors";
import { descriptorSetPath } from "@rlhf/proto";

/** Stands in for a request message that could not be decoded. */
export class DecodeFailure {
  constructor(
    /** Full method path, e.g. `/rlhf.policy.v1.PolicyService/Generate`. */
    readonly method: string,
    /** The decoder's reason. */
    readonly reason: string,
    /** The message's bytes, to find the field the reason is about. */
    readonly bytes?: Uint8Array,
  ) {}

  /**
   * The error to answer with, naming the field under `field` (the request, or which message of a
   * stream: `requests[3]`), e.g. `requests[3].chunk.header.version: cannot decode …`.
   */
  toError(field = "request"): InvalidArgumentError {
    const name = this.method.slice(this.method.lastIndexOf("/") + 1);
    const fault = this.bytes ? locateFault(this.method, this.bytes) : undefined;
    const at = fault ? (field === "request" ? fault.path : `${field}.${fault.path}`) : field;
    const why = fault?.problem ?? this.reason.slice(0, 200);
    return new InvalidArgumentError(at, `cannot decode the ${name} request message: ${why}`);
  }
}

/** A copy of `def` whose request deserializers return a DecodeFailure instead of throwing. */
export function tolerantDecoding(def: ServiceDefinition): ServiceDefinition {
  const out: Record<string, unknown> = {};
  for (const [name, m] of Object.entries(def)) {
    const decode = m.requestDeserialize;
    out[name] = {
      ...m,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return decode(bytes);
        } catch (e) {
          return new DecodeFailure(m.path, e instanceof Error ? e.message : String(e), bytes);
        }
      },
    };
  }
  return out as ServiceDefinition;
}

/** A field of a message as proto-loader's DescriptorProto objects carry it. */
interface FieldDesc {
  name: string;
  number: number;
  label: string;
  type: string;
  typeName: string;
}
interface MessageDesc {
  name: string;
  field: FieldDesc[];
}

let contracts: PackageDefinition | undefined;
/** Every contract of the project, read once, on the first request that fails to decode. */
function contractsOnce(): PackageDefinition {
  contracts ??= loadFileDescriptorSetFromBuffer(readFileSync(descriptorSetPath));
  return contracts;
}

const messageAt = (fullName: string): MessageDesc | undefined => {
  const d = contractsOnce()[fullName] as { format?: string; type?: MessageDesc } | undefined;
  return d?.format === "Protocol Buffer 3 DescriptorProto" ? d.type : undefined;
};

/** Resolves a (possibly relative) type name as protobuf scoping does: innermost scope first. */
function resolveType(typeName: string, scope: string): string | undefined {
  if (typeName.startsWith(".")) return messageAt(typeName.slice(1)) ? typeName.slice(1) : undefined;
  const parts = scope.split(".");
  for (let i = parts.length; i >= 0; i--) {
    const candidate = [...parts.slice(0, i), typeName].join(".");
    if (messageAt(candidate)) return candidate;
  }
  return undefined;
}

/** The request type of a method path (`/pkg.Service/Method`), as a full name. */
function requestTypeOf(method: string): string | undefined {
  const [service, name] = method.slice(1).split("/");
  const m = (contractsOnce()[service] as Record<string, { requestType?: { type?: MessageDesc } }> | undefined)?.[name];
  const short = m?.requestType?.type?.name;
  if (!short) return undefined;
  return resolveType(short, service.slice(0, service.lastIndexOf(".")));
}

/** Where a message fails to decode and why, in the contract's field names. */
export interface DecodeFault {
  /** e.g. `after_sequence`, `comparisons.groups[2].ranks[1]`. */
  path: string;
  problem: string;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
/** Scalar types a repeated field packs (one length-delimited run of elements). */
const PACKED = new Set(["TYPE_INT32", "TYPE_INT64", "TYPE_UINT32", "TYPE_UINT64", "TYPE_SINT32", "TYPE_SINT64", "TYPE_BOOL", "TYPE_ENUM", "TYPE_FIXED64", "TYPE_SFIXED64", "TYPE_DOUBLE", "TYPE_FIXED32", "TYPE_SFIXED32", "TYPE_FLOAT"]);
/** Packed element sizes of the fixed-width types that are never 64-bit integers. */
const FIXED: Record<string, number> = { TYPE_DOUBLE: 8, TYPE_FIXED32: 4, TYPE_SFIXED32: 4, TYPE_FLOAT: 4 };

class BreaksOff extends Error {}

/** Reads protobuf's wire format between `pos` and `end`. */
class Wire {
  constructor(
    readonly buf: Uint8Array,
    public pos: number,
    readonly end: number,
  ) {}

  varint(): bigint {
    let v = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.pos >= this.end) throw new BreaksOff();
      const b = this.buf[this.pos++];
      v |= BigInt(b & 0x7f) << shift;
      if (b < 0x80) return v;
    }
    throw new BreaksOff();
  }

  fixed64(): bigint {
    const at = this.skip(8);
    let v = 0n;
    for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(this.buf[at + i]);
    return v;
  }

  /** Moves past `n` bytes; returns where they start. */
  skip(n: number): number {
    if (n > this.end - this.pos) throw new BreaksOff();
    this.pos += n;
    return this.pos - n;
  }
}

/**
 * Walks `bytes` as a request of `method` and returns the first field the generated decoder would
 * refuse: a 64-bit integer outside ±(2^53 − 1), a field the message breaks off inside, a wire type
 * that does not exist. Undefined when it finds none (or the method is not in the contracts).
 */
export function locateFault(method: string, bytes: Uint8Array): DecodeFault | undefined {
  const type = requestTypeOf(method);
  return type ? walk(new Wire(bytes, 0, bytes.length), type, "") : undefined;
}

/** The signed value of a 64-bit integer field's raw bits, or undefined for other fields. */
function int64Value(type: string, raw: bigint): bigint | undefined {
  if (type === "TYPE_UINT64" || type === "TYPE_FIXED64") return raw;
  if (type === "TYPE_INT64" || type === "TYPE_SFIXED64") return BigInt.asIntN(64, raw);
  if (type === "TYPE_SINT64") return (raw >> 1n) ^ -(raw & 1n);
  return undefined;
}

function walk(r: Wire, typeName: string, prefix: string): DecodeFault | undefined {
  const byNumber = new Map((messageAt(typeName)?.field ?? []).map((f) => [f.number, f]));
  const counts = new Map<number, number>();
  const under = (name: string) => (prefix ? `${prefix}.${name}` : name);
  let path = prefix || "request";
  try {
    while (r.pos < r.end) {
      path = under("(next field)");
      const tag = r.varint();
      const number = Number(tag >> 3n);
      const wire = Number(tag & 7n);
      const f = byNumber.get(number);
      const repeated = f?.label === "LABEL_REPEATED";
      const at = (i: number) => under(`${f?.name ?? `field ${number}`}${repeated ? `[${i}]` : ""}`);
      const index = counts.get(number) ?? 0;
      let next = index + 1;
      path = at(index);
      const check = (raw: bigint): DecodeFault | undefined => {
        const v = f ? int64Value(f.type, raw) : undefined;
        if (v === undefined || (v <= MAX_SAFE && v >= -MAX_SAFE)) return undefined;
        return { path, problem: `${v} is outside ±(2^53 − 1) = ±${Number.MAX_SAFE_INTEGER}, the integers this service reads exactly` };
      };
      let fault: DecodeFault | undefined;
      if (wire === 0) fault = check(r.varint());
      else if (wire === 1) fault = check(r.fixed64());
      else if (wire === 5) r.skip(4);
      else if (wire === 2) {
        const len = Number(r.varint());
        const inner = new Wire(r.buf, r.skip(len), r.pos);
        if (f?.type === "TYPE_MESSAGE") {
          const sub = resolveType(f.typeName, typeName);
          fault = sub ? walk(inner, sub, path) : undefined;
        } else if (repeated && f && PACKED.has(f.type)) {
          // Packed scalars: the elements continue the field's index.
          for (next = index; inner.pos < inner.end; next++) {
            path = at(next);
            if (FIXED[f.type]) inner.skip(FIXED[f.type]);
            else if ((fault = check(f.type === "TYPE_FIXED64" || f.type === "TYPE_SFIXED64" ? inner.fixed64() : inner.varint()))) break;
          }
        }
      } else if (wire === 3 || wire === 4) {
        return undefined; // groups (proto2): not walked
      } else {
        return { path, problem: `wire type ${wire} does not exist` };
      }
      if (fault) return fault;
      counts.set(number, next);
    }
  } catch (e) {
    if (e instanceof BreaksOff) return { path, problem: "the message breaks off inside this field (truncated, or not this message)" };
    throw e;
  }
  return undefined;
}
