/**
 * Domain errors. Domain code (model, data, maths) throws these; the service kit maps each `code`
 * to the gRPC status of the same name in one place (`@rlhf/grpc-kit` toServiceError), so no
 * domain code imports gRPC.
 */

/** Status names shared with gRPC (google.rpc.Code), restricted to those domain code may raise. */
export type ErrorCode =
  | "INVALID_ARGUMENT"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "FAILED_PRECONDITION"
  | "RESOURCE_EXHAUSTED"
  | "ABORTED"
  | "CANCELLED"
  | "DEADLINE_EXCEEDED"
  | "UNAVAILABLE"
  | "UNIMPLEMENTED"
  | "PERMISSION_DENIED"
  | "DATA_LOSS"
  | "INTERNAL";

/** Base class: an error whose `code` says how a caller should treat it. */
export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    /** The request field or resource at fault, e.g. `batch.tokens[17]`. */
    readonly field?: string,
  ) {
    super(field ? `${field}: ${message}` : message);
    this.name = new.target.name;
  }
}

/** Bad shapes, ids, lengths, values: the request can never succeed as sent. */
export class InvalidArgumentError extends DomainError {
  constructor(field: string, message: string) {
    super("INVALID_ARGUMENT", message, field);
  }
}

/** Unknown weights version, checkpoint, run, ... */
export class NotFoundError extends DomainError {
  constructor(field: string, message: string) {
    super("NOT_FOUND", message, field);
  }
}

/** The system is not in a state to serve the call (e.g. no model loaded). */
export class FailedPreconditionError extends DomainError {
  constructor(message: string) {
    super("FAILED_PRECONDITION", message);
  }
}

/** The request names something the caller may not touch (a path outside the service's root folder). */
export class PermissionDeniedError extends DomainError {
  constructor(field: string, message: string) {
    super("PERMISSION_DENIED", message, field);
  }
}

/** A bounded queue or limit is full; the caller may retry later. */
export class ResourceExhaustedError extends DomainError {
  constructor(message: string) {
    super("RESOURCE_EXHAUSTED", message);
  }
}

/** Streamed data failed its integrity check (digest mismatch, stream ended early). */
export class DataLossError extends DomainError {
  constructor(message: string) {
    super("DATA_LOSS", message);
  }
}

/** A dependency cannot be reached right now; retrying may succeed. */
export class UnavailableError extends DomainError {
  constructor(message: string) {
    super("UNAVAILABLE", message);
  }
}

/** Throws InvalidArgumentError(field, message) unless `cond` holds. */
export function check(cond: unknown, field: string, message: string): asserts cond {
  if (!cond) throw new InvalidArgumentError(field, message);
}

/**
 * Process wiring from environment variables is wrong (missing or malformed): one clear line, and
 * the process stops (`exitOnConfigError` of @rlhf/grpc-kit prints it and exits 2).
 */
export class ConfigError extends Error {}

export * from "./paths";
export * from "./net";
export * from "./files";
export * from "./run-id";
