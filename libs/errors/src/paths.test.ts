import { test, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { confinePath, parseRootList, PermissionDeniedError, InvalidArgumentError } from "./index";

const base = realpathSync(mkdtempSync(join(tmpdir(), "rlhf-paths-")));
after(() => rmSync(base, { recursive: true, force: true }));
const root = join(base, "root");
const outside = join(base, "outside");
mkdirSync(join(root, "runs", "a"), { recursive: true });
mkdirSync(outside);
writeFileSync(join(outside, "secret"), "s3cret");
symlinkSync(outside, join(root, "escape")); // a symlink inside the root pointing out
symlinkSync(join(outside, "not-yet"), join(root, "dangling")); // a dangling one pointing out
symlinkSync(join(root, "runs"), join(base, "runs-link")); // a symlink outside pointing in
const roots = { dirs: [root], name: "CHECKPOINT_ROOT" };

function code(fn: () => unknown): string {
  try {
    fn();
    return "OK";
  } catch (e) {
    return `${(e as { code?: string }).code}: ${(e as Error).message}`;
  }
}

test("paths inside the root resolve to their real path, existing or not", () => {
  assert.equal(confinePath(join(root, "runs", "a"), "dir", roots), join(root, "runs", "a"));
  assert.equal(confinePath(join(root, "runs", "new", "deeper"), "dir", roots), join(root, "runs", "new", "deeper"));
  assert.equal(confinePath(root, "dir", roots), root);
  assert.equal(confinePath(join(root, "runs", "..", "runs", "a"), "dir", roots), join(root, "runs", "a"));
  // a symlink elsewhere that leads into the root is judged by where it leads
  assert.equal(confinePath(join(base, "runs-link", "a"), "dir", roots), join(root, "runs", "a"));
  // a file may itself be a root
  assert.equal(confinePath(join(outside, "secret"), "f", { dirs: [join(outside, "secret")], name: "DATA_ROOT" }), join(outside, "secret"));
});

test("`..`, absolute paths and symlinks out of the root are PERMISSION_DENIED naming the field, not the root", () => {
  const denied = /^PERMISSION_DENIED: dir: ".*" is outside CHECKPOINT_ROOT$/;
  assert.match(code(() => confinePath(join(root, "..", "outside"), "dir", roots)), denied);
  assert.match(code(() => confinePath(join(root, "runs", "..", "..", "outside", "x"), "dir", roots)), denied);
  assert.match(code(() => confinePath("/etc/passwd", "dir", roots)), denied);
  assert.match(code(() => confinePath(join(root, "escape", "secret"), "dir", roots)), denied);
  assert.match(code(() => confinePath(join(root, "escape", "new-folder"), "dir", roots)), denied);
  assert.match(code(() => confinePath(join(root, "dangling"), "dir", roots)), denied);
  assert.match(code(() => confinePath(join(root, "dangling", "x"), "dir", roots)), denied);
  // a sibling whose name starts like the root is not inside it
  assert.match(code(() => confinePath(`${root}-other`, "dir", roots)), denied);
  assert.ok(!code(() => confinePath("/etc", "dir", roots)).includes(root), "the root is not disclosed");
  try {
    confinePath("/etc", "dir", roots);
  } catch (e) {
    assert.ok(e instanceof PermissionDeniedError);
  }
});

test("NUL bytes, empty and over-long paths are INVALID_ARGUMENT naming the field", () => {
  assert.equal(code(() => confinePath(join(root, "a\0b"), "checkpoint_dir", roots)), "INVALID_ARGUMENT: checkpoint_dir: contains a NUL byte");
  assert.equal(code(() => confinePath("", "dir", roots)), "INVALID_ARGUMENT: dir: is empty");
  assert.equal(code(() => confinePath(undefined, "dir", roots)), "INVALID_ARGUMENT: dir: is empty");
  assert.match(code(() => confinePath(join(root, "x".repeat(5000)), "dir", roots)), /^INVALID_ARGUMENT: dir: is longer than 4096/);
  assert.ok(new InvalidArgumentError("a", "b") instanceof Error);
});

test("without roots only the checks of the string apply; root lists split on ':'", () => {
  assert.equal(confinePath("/etc", "CHECKPOINT_DIR"), "/etc");
  assert.deepEqual(parseRootList(" /data : /models ::"), ["/data", "/models"]);
  assert.equal(confinePath(join(outside, "secret"), "dir", { dirs: ["/nonexistent-root", outside], name: "CHECKPOINT_ROOT" }), join(outside, "secret"));
});
