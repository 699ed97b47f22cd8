/**
 * File helpers every package needs the same way: atomic writes (a reader, or a crash, never sees
 * half a file) and JSON reads whose errors name the file (NOT_FOUND when missing,
 * INVALID_ARGUMENT when it is not JSON).
 */
import { readFile, rename, rm, writeFile } from "node:fs/promises";
import { renameSync, rmSync, writeFileSync } from "node:fs";
import { InvalidArgumentError, NotFoundError } from "./index";

let written = 0;

/** A temporary sibling of `path` that no other write of this process uses. */
function tmpName(path: string): string {
  return `${path}.tmp-${process.pid}-${++written}`;
}

/** Writes `data` to a temporary sibling of `path`, then renames it into place. */
export async function writeFileAtomic(path: string, data: string | Uint8Array): Promise<void> {
  const tmp = tmpName(path);
  try {
    await writeFile(tmp, data);
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** {@link writeFileAtomic}, synchronously. */
export function writeFileAtomicSync(path: string, data: string | Uint8Array): void {
  const tmp = tmpName(path);
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}

/** `value` as pretty JSON (two-space indent, final newline), written atomically. */
export function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  return writeFileAtomic(path, JSON.stringify(value, null, 2) + "\n");
}

/**
 * Reads and parses a JSON file. Missing: NotFoundError naming the path, with `notFound` as the
 * message (default "no such file"); not JSON: InvalidArgumentError naming the path. The value is
 * not checked: the caller validates its fields.
 */
export async function readJsonFile<T = unknown>(path: string, notFound = "no such file"): Promise<T> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new NotFoundError(path, notFound);
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new InvalidArgumentError(path, `not valid JSON: ${(e as Error).message}`);
  }
}
