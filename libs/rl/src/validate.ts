/**
 * Input checks shared by the files of this package. Internal: not re-exported from the index.
 * Every failure is an InvalidArgumentError naming the field (and the index, for arrays).
 */
import { InvalidArgumentError, check } from "@rlhf/errors";

/** Throws unless every entry of `values` is a finite number; the error names `field[index]`. */
export function checkFiniteArray(values: ArrayLike<number>, field: string): void {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new InvalidArgumentError(`${field}[${i}]`, `must be a finite number, got ${String(v)}`);
    }
  }
}

/** Throws unless `value` is a finite number. */
export function checkFinite(value: number, field: string): void {
  check(typeof value === "number" && Number.isFinite(value), field, `must be a finite number, got ${String(value)}`);
}

/** Throws unless `value` is a finite number in [lo, hi]. */
export function checkInRange(value: number, lo: number, hi: number, field: string): void {
  checkFinite(value, field);
  check(value >= lo && value <= hi, field, `must be in [${lo}, ${hi}], got ${value}`);
}

/** Throws unless `value` is an integer >= `min`. */
export function checkInteger(value: number, min: number, field: string): void {
  check(Number.isSafeInteger(value) && value >= min, field, `must be an integer >= ${min}, got ${String(value)}`);
}

/** Throws unless `values.length === expected`; the message says what the length should match. */
export function checkLength(values: ArrayLike<unknown>, expected: number, field: string, what: string): void {
  check(values.length === expected, field, `has length ${values.length} but ${what} is ${expected}`);
}
