import { InvalidArgumentError } from "./index";

/**
 * A run's id: a folder name under the runs folder, a token of its NATS subjects, a span attribute
 * and a metadata value, so one rule for all of them.
 */
export const RUN_ID_RULE = "1..64 of [a-z0-9-]";
const RUN_ID = /^[a-z0-9-]{1,64}$/;

/** Whether `s` is a well-formed run id ({@link RUN_ID_RULE}). */
export function isRunId(s: string): boolean {
  return RUN_ID.test(s);
}

/** `s`, or INVALID_ARGUMENT naming `field` and the rule (the value quoted, cut at 80 characters). */
export function checkRunId(s: string, field: string): string {
  if (!isRunId(s)) throw new InvalidArgumentError(field, `must be ${RUN_ID_RULE}, got ${JSON.stringify(s.slice(0, 80))}`);
  return s;
}
