/**
 * Requests that fail to decode are the client's fault: INVALID_ARGUMENT naming the field and the
 * decoder's reason, never INTERNAL. grpc-js answers INTERNAL ("Error deserializing request") when a
 * method's deserializer throws, before any handler runs — for well-formed protobuf too, e.g. a
 * 64-bit integer past 2^53 that the generated decoder refuses. So the deserializers registered by
 * {@link startServer} never throw: they return a {@link DecodeFailure}, which the kit's handler
 * wrappers turn into INVALID_ARGUMENT before the service's handler sees it. The field is found by
 * walking the bytes again with the contracts' descriptors (only after a failure, and at most
 * {@link MAX_FIELDS_WALKED} fields): the first 64-bit integer past 2^53 − 1, the field inside which
 * the message breaks off, or a wire type that does not exist.
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
   * stream: `requests[3]`), e.g. `requests[3].chunk.header.total_bytes: cannot decode …`.
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

const loaded = new Map<string, PackageDefinition>();
/**
 * The contracts of a descriptor set file, read once per process: by the server for reflection at
 * start-up, here on the first request that fails to decode (the project's set by default).
 */
export function loadContracts(path: string = descriptorSetPath): PackageDefinition {
  let pkgDef = loaded.get(path);
  if (!pkgDef) loaded.set(path, (pkgDef = loadFileDescriptorSetFromBuffer(readFileSync(path))));
  return pkgDef;
}

const messageAt = (fullName: string): MessageDesc | undefined => {
  const d = loadContracts()[fullName] as { format?: string; type?: MessageDesc } | undefined;
  return d?.format === "Protocol Buffer 3 DescriptorProto" ? d.type : undefined;
};

const resolved = new Map<string, string | undefined>();
/** Resolves a (possibly relative) type name as protobuf scoping does, innermost scope first; cached. */
function resolveType(typeName: string, scope: string): string | undefined {
  const key = `${scope} ${typeName}`;
  if (!resolved.has(key)) resolved.set(key, resolveUncached(typeName, scope));
  return resolved.get(key);
}

function resolveUncached(typeName: string, scope: string): string | undefined {
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
  const m = (loadContracts()[service] as Record<string, { requestType?: { type?: MessageDesc } }> | undefined)?.[name];
  const short = m?.requestType?.type?.name;
  if (!short) return undefined;
  return resolveType(short, service.slice(0, service.lastIndexOf(".")));
}

/** Where a message fails to decode and why, in the contract's field names. */
export interface DecodeFault {
  /** e.g. `after_sequence`, `chunk.header.tensors[1].byte_length`. */
  path: string;
  problem: string;
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
/** The 64-bit integer types, which the generated decoder refuses past 2^53 − 1. */
const INT64 = new Set(["TYPE_INT64", "TYPE_UINT64", "TYPE_SINT64", "TYPE_FIXED64", "TYPE_SFIXED64"]);

class BreaksOff extends Error {}

/** Reads protobuf's wire format between `pos` and `end`. */
class Wire {
  constructor(
    readonly buf: Uint8Array,
    public pos: number,
    readonly end: number,
  ) {}

  /** A varint as a number (tags, lengths, values not looked at): exact below 2^53. */
  small(): number {
    let v = 0;
    for (let i = 0, scale = 1; i < 10; i++, scale *= 128) {
      if (this.pos >= this.end) throw new BreaksOff();
      const b = this.buf[this.pos++];
      v += (b & 0x7f) * scale;
      if (b < 0x80) return v;
    }
    throw new BreaksOff();
  }

  /** A varint's 64 bits, exactly. */
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

/** Fields a walk reads at most (a 20,000-pair request broken at its end: about 60 ms on a slow 2-core Xeon): past this it gives up and the decoder's reason stands. */
const MAX_FIELDS_WALKED = 20_000;

/**
 * Walks `bytes` as a request of `method` and returns the first field the generated decoder would
 * refuse: a 64-bit integer outside ±(2^53 − 1), a field the message breaks off inside, a wire type
 * that does not exist. Undefined when it finds none, gives up ({@link MAX_FIELDS_WALKED} fields)
 * or the method is not in the contracts.
 */
export function locateFault(method: string, bytes: Uint8Array): DecodeFault | undefined {
  const type = requestTypeOf(method);
  return type ? walk(new Wire(bytes, 0, bytes.length), type, undefined, { left: MAX_FIELDS_WALKED }) : undefined;
}

/** The signed value of a 64-bit integer field's raw bits, or undefined for other fields. */
export function int64Value(type: string, raw: bigint): bigint | undefined {
  if (type === "TYPE_UINT64" || type === "TYPE_FIXED64") return raw;
  if (type === "TYPE_INT64" || type === "TYPE_SFIXED64") return BigInt.asIntN(64, raw);
  if (type === "TYPE_SINT64") return (raw >> 1n) ^ -(raw & 1n);
  return undefined;
}

const fieldsCache = new Map<string, Map<number, FieldDesc>>();
/** The fields of a message type by number (built once per type). */
function fieldsOf(typeName: string): Map<number, FieldDesc> {
  let m = fieldsCache.get(typeName);
  if (!m) fieldsCache.set(typeName, (m = new Map((messageAt(typeName)?.field ?? []).map((f) => [f.number, f]))));
  return m;
}

const BREAKS_OFF = "the message breaks off inside this field (truncated, or not this message)";
const SKIPPED_WHOLE = new Set(["TYPE_MESSAGE", "TYPE_STRING", "TYPE_BYTES"]);

/** Walks one message; `prefix` writes out the path of the field that holds it (none: the request). */
function walk(r: Wire, typeName: string, prefix: (() => string) | undefined, budget: { left: number }): DecodeFault | undefined {
  const fields = fieldsOf(typeName);
  const counts = new Map<number, number>();
  // The field being read; its path is written out only for the answer.
  let f: FieldDesc | undefined;
  let number = 0;
  let index = 0;
  let packed = false;
  let inField = false;
  const path = () => {
    const name = inField ? `${f?.name ?? `field ${number}`}${f?.label === "LABEL_REPEATED" && !packed ? `[${index}]` : ""}` : "(next field)";
    return prefix ? `${prefix()}.${name}` : name;
  };
  try {
    while (r.pos < r.end) {
      if (--budget.left < 0) return undefined;
      inField = false;
      const tag = r.small();
      number = Math.floor(tag / 8);
      const wire = tag % 8;
      f = fields.get(number);
      index = counts.get(number) ?? 0;
      counts.set(number, index + 1);
      // An element of a repeated field is named by its index; a packed run of scalars as a whole.
      packed = wire === 2 && f !== undefined && !SKIPPED_WHOLE.has(f.type);
      inField = true;
      const int64 = f !== undefined && INT64.has(f.type);
      let raw: bigint | undefined;
      if (wire === 0) {
        if (int64) raw = r.varint();
        else r.small();
      } else if (wire === 1) {
        if (int64) raw = r.fixed64();
        else r.skip(8);
      } else if (wire === 5) {
        r.skip(4);
      } else if (wire === 2) {
        const len = r.small();
        const inner = new Wire(r.buf, r.skip(len), r.pos);
        // A nested message is walked; strings, bytes and packed scalars are skipped whole (no
        // contract has a repeated 64-bit integer, the one packed kind the decoder could refuse).
        const sub = f?.type === "TYPE_MESSAGE" ? resolveType(f.typeName, typeName) : undefined;
        const fault = sub ? walk(inner, sub, path, budget) : undefined;
        if (fault) return fault;
      } else if (wire === 3 || wire === 4) {
        return undefined; // groups (proto2): not walked
      } else {
        return { path: path(), problem: `wire type ${wire} does not exist` };
      }
      const v = raw === undefined || !f ? undefined : int64Value(f.type, raw);
      if (v !== undefined && (v > MAX_SAFE || v < -MAX_SAFE)) {
        return { path: path(), problem: `${v} is outside ±(2^53 − 1) = ±${Number.MAX_SAFE_INTEGER}, the integers this service reads exactly` };
      }
    }
  } catch (e) {
    if (e instanceof BreaksOff) return { path: path(), problem: BREAKS_OFF };
    throw e;
  }
  return undefined;
}
