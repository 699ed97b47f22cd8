/**
 * Paths named in requests, confined to a service's root folders. A request may only name a file
 * or folder that resolves, symlinks included, inside one of the roots; the check is done on the
 * real path of the deepest part of the path that exists (what does not exist yet cannot be a
 * symlink), so neither `..`, an absolute path nor a symlink inside the root leads out of it.
 */
import { lstatSync, readlinkSync, realpathSync } from "node:fs";
import { basename, delimiter, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import { InvalidArgumentError, PermissionDeniedError } from "./index";

/** Longest path accepted in a request (Linux's PATH_MAX). */
export const MAX_PATH_LENGTH = 4096;

/** Most symlinks followed while resolving one path (Linux's limit). */
const MAX_SYMLINK_HOPS = 40;

/** Roots a service confines request paths to, and the variable that set them (named in errors). */
export interface PathRoots {
  /** Folders (or single files); relative ones resolve against the working directory. */
  dirs: readonly string[];
  /** The setting's name, e.g. "CHECKPOINT_ROOT": errors say a path is outside it. */
  name: string;
}

/**
 * A root list as environment variables write it: paths separated by the platform's delimiter
 * (`:` on Linux, like PATH). Empty entries are dropped.
 */
export function parseRootList(value: string): string[] {
  return value
    .split(delimiter)
    .map((s) => s.trim())
    .filter((s) => s !== "");
}

/**
 * The real path of `abs` (absolute): symlinks resolved in every part that exists; a missing tail
 * is appended as written. A dangling symlink is followed to its target, so a path cannot be
 * created through one into another folder.
 */
export function realPathOf(abs: string): string {
  let head = abs;
  const tail: string[] = [];
  for (let hops = 0; ; ) {
    try {
      return join(realpathSync(head), ...tail);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ENOTDIR") throw e;
    }
    let link: string | undefined;
    try {
      if (lstatSync(head).isSymbolicLink()) link = readlinkSync(head);
    } catch {
      // does not exist at all: go up
    }
    if (link !== undefined) {
      if (++hops > MAX_SYMLINK_HOPS) throw Object.assign(new Error("too many symbolic links"), { code: "ELOOP" });
      head = resolve(dirname(head), link);
      continue;
    }
    const parent = dirname(head);
    if (parent === head) return join(head, ...tail);
    tail.unshift(basename(head));
    head = parent;
  }
}

function inside(root: string, p: string): boolean {
  const rel = relative(root, p);
  return rel === "" || (rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/**
 * Checks a path from a request and returns its real absolute path.
 * - not a string, empty, longer than {@link MAX_PATH_LENGTH}, or with a NUL byte: InvalidArgumentError naming `field`;
 * - resolving (symlinks included) to a place outside every root: PermissionDeniedError naming
 *   `field` and the roots' setting (never the roots themselves, nor anything about what exists);
 * - `roots` undefined: only the first checks (paths an operator set, e.g. CHECKPOINT_DIR at start).
 * A relative path resolves against the working directory, as before roots existed.
 */
export function confinePath(path: unknown, field: string, roots?: PathRoots): string {
  if (typeof path !== "string" || path === "") throw new InvalidArgumentError(field, "is empty");
  if (path.includes("\0")) throw new InvalidArgumentError(field, "contains a NUL byte");
  if (path.length > MAX_PATH_LENGTH) throw new InvalidArgumentError(field, `is longer than ${MAX_PATH_LENGTH} characters`);
  let real: string;
  try {
    real = realPathOf(resolve(path));
  } catch (e) {
    throw new InvalidArgumentError(field, `cannot be resolved (${(e as NodeJS.ErrnoException).code ?? "error"})`);
  }
  if (!roots) return real;
  for (const dir of roots.dirs) {
    let root: string;
    try {
      root = realPathOf(resolve(dir));
    } catch {
      continue;
    }
    if (inside(root, real)) return real;
  }
  throw new PermissionDeniedError(field, `${JSON.stringify(path)} is outside ${roots.name}`);
}
