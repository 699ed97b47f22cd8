import { status, type ServiceError, Metadata } from "@grpc/grpc-js";
import { DomainError, type ErrorCode } from "@rlhf/errors";
import type { Logger } from "pino";

const codeByName: Record<ErrorCode, status> = {
  INVALID_ARGUMENT: status.INVALID_ARGUMENT,
  NOT_FOUND: status.NOT_FOUND,
  ALREADY_EXISTS: status.ALREADY_EXISTS,
  FAILED_PRECONDITION: status.FAILED_PRECONDITION,
  RESOURCE_EXHAUSTED: status.RESOURCE_EXHAUSTED,
  ABORTED: status.ABORTED,
  CANCELLED: status.CANCELLED,
  DEADLINE_EXCEEDED: status.DEADLINE_EXCEEDED,
  UNAVAILABLE: status.UNAVAILABLE,
  UNIMPLEMENTED: status.UNIMPLEMENTED,
  PERMISSION_DENIED: status.PERMISSION_DENIED,
  DATA_LOSS: status.DATA_LOSS,
  INTERNAL: status.INTERNAL,
};

/** Name of a numeric gRPC status ("INVALID_ARGUMENT" for 3). */
export function statusName(code: number): string {
  return status[code] ?? `UNKNOWN_${code}`;
}

/** True for an error that came back from a gRPC call (it has a numeric status code). */
export function isServiceError(err: unknown): err is ServiceError {
  return (
    err instanceof Error &&
    typeof (err as Partial<ServiceError>).code === "number" &&
    (err as Partial<ServiceError>).metadata instanceof Metadata
  );
}

/** An error with a gRPC status, ready to pass to a grpc-js callback or `call.destroy`. */
export interface StatusError {
  code: status;
  details: string;
  metadata?: Metadata;
}

/**
 * The one place where errors become gRPC statuses:
 * - a DomainError maps by its code (bad input -> INVALID_ARGUMENT, unknown version ->
 *   NOT_FOUND, no model -> FAILED_PRECONDITION, queue full -> RESOURCE_EXHAUSTED, ...);
 * - an error returned by a downstream gRPC call keeps its code (never flattened to INTERNAL);
 * - anything else is INTERNAL with a short message; its stack goes to the log only.
 */
export function toStatusError(err: unknown, log?: Logger): StatusError {
  if (err instanceof DomainError) {
    return { code: codeByName[err.code], details: err.message };
  }
  if (isServiceError(err)) {
    return { code: err.code, details: err.details || err.message };
  }
  const e = err instanceof Error ? err : new Error(String(err));
  log?.error({ err: { message: e.message, stack: e.stack } }, "internal error");
  return { code: status.INTERNAL, details: `internal error: ${e.message.split("\n")[0].slice(0, 200)}` };
}

/** "CODE: details" of a failed call, e.g. `INVALID_ARGUMENT: batch.tokens[3]: ...` (tests, CLI output). */
export function statusText(e: unknown): string {
  const se = e as Partial<ServiceError>;
  return `${statusName(se.code ?? 2)}: ${se.details ?? String((e as Error).message ?? e)}`;
}

/** The call's result, or its failure as {@link statusText}: lets a test match the status and message in one regex. */
export async function resultOrStatus<T>(p: Promise<T>): Promise<T | string> {
  try {
    return await p;
  } catch (e) {
    return statusText(e);
  }
}
