/**
 * Deadlines in tests only catch a hang; none may fail a test because the machine is slow. Every one
 * of them (a node:test `timeout`, a client's `deadlineMs`, a wait for a process or a condition) goes
 * through {@link testDeadlineMs}, so one environment variable stretches them all on a loaded or slow
 * machine: `RLHF_TEST_TIMEOUT_SCALE=4 pnpm test`. `scripts/run-tests.mjs` scales the runner's own
 * per-test limit by the same variable.
 * `deadline.test.ts` checks every test file and test helper for a deadline written as a bare number.
 *
 * Other packages' tests import it as `@rlhf/errors/dist/testing/deadline` (the lib every package
 * can depend on without a cycle: it depends on nothing).
 */

/** The variable's name. */
export const TEST_TIMEOUT_SCALE_ENV = "RLHF_TEST_TIMEOUT_SCALE";

/**
 * Parses RLHF_TEST_TIMEOUT_SCALE: a positive number, default 1 (unset or empty). Anything else
 * throws one clear line, so a typo does not silently leave the deadlines as they were.
 */
export function parseTimeoutScale(value: string | undefined): number {
  if (value === undefined || value.trim() === "") return 1;
  const scale = Number(value);
  if (!Number.isFinite(scale) || scale <= 0) throw new Error(`${TEST_TIMEOUT_SCALE_ENV} must be a positive number, got ${JSON.stringify(value)}`);
  return scale;
}

/** The factor every test deadline is multiplied by (RLHF_TEST_TIMEOUT_SCALE, default 1). */
export const TEST_TIMEOUT_SCALE: number = parseTimeoutScale(process.env[TEST_TIMEOUT_SCALE_ENV]);

/**
 * A deadline that only catches a hang: `ms` (what an idle 2-core machine needs, with room to
 * spare) times RLHF_TEST_TIMEOUT_SCALE, rounded to a whole millisecond.
 */
export function testDeadlineMs(ms: number): number {
  return Math.round(ms * TEST_TIMEOUT_SCALE);
}

/**
 * Waits until `cond` holds, checking every `everyMs` (default 10). A wait for something to have
 * happened (a call to have reached a queue, a client to have seen a disconnect), instead of a
 * sleep that a loaded machine can outlast; it rejects with `what` only after testDeadlineMs(ms)
 * (default 60 s): a hang.
 */
export async function waitUntil(cond: () => boolean | Promise<boolean>, what: string, ms = 60_000, everyMs = 10): Promise<void> {
  const deadline = Date.now() + testDeadlineMs(ms);
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`gave up waiting after ${testDeadlineMs(ms)} ms: ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
