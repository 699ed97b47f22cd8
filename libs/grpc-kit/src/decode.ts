/**
 * Requests that fail to decode are the client's fault: INVALID_ARGUMENT naming the method and the
 * decoder's reason, never INTERNAL. grpc-js answers INTERNAL ("Error deserializing request") when a
 * method's deserializer throws, before any handler runs — for well-formed protobuf too, e.g. a
 * 64-bit integer past 2^53 that the generated decoder refuses. So the deserializers registered by
 * {@link startServer} never throw: they return a {@link DecodeFailure}, which the kit's handler
 * wrappers turn into INVALID_ARGUMENT before the service's handler sees it.
 */
import type { ServiceDefinition } from "@grpc/grpc-js";
import { InvalidArgumentError } from "@rlhf/errors";

/** Stands in for a request message that could not be decoded. */
export class DecodeFailure {
  constructor(
    /** Full method path, e.g. `/rlhf.policy.v1.PolicyService/Generate`. */
    readonly method: string,
    /** The decoder's reason. */
    readonly reason: string,
  ) {}

  /** The error to answer with; `field` says which message of a stream (`requests[3]`). */
  toError(field = "request"): InvalidArgumentError {
    const name = this.method.slice(this.method.lastIndexOf("/") + 1);
    return new InvalidArgumentError(field, `cannot decode the ${name} request message: ${this.reason.slice(0, 200)}`);
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
          return new DecodeFailure(m.path, e instanceof Error ? e.message : String(e));
        }
      },
    };
  }
  return out as ServiceDefinition;
}
