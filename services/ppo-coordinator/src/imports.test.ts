// The layering (docs/architecture.md): the coordinator's files, and each service's, import each
// other in one direction (no circle), and inside recipe/ only the gateway imports the generated
// proto code.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

const src = resolve(__dirname);
/** The source files below `dir` (tests left out). */
function sourcesOf(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? sourcesOf(join(dir, e.name)) : e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") ? [join(dir, e.name)] : []));
}
const files = sourcesOf(src);

/** The relative imports of a file (type-only ones too), resolved to files. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(/from "(\.{1,2}\/[^"]+)"/g)].map((m) => resolve(dirname(file), m[1])).map((p) => (existsSync(`${p}.ts`) ? `${p}.ts` : join(p, "index.ts")));
}

/** Fails naming the first import circle among `files` (paths shown relative to `base`). */
function assertNoCircle(files: string[], base: string): void {
  const graph = new Map(files.map((f) => [f, importsOf(f)]));
  const state = new Map<string, "open" | "done">();
  const visit = (f: string, path: string[]): void => {
    if (state.get(f) === "done") return;
    if (state.get(f) === "open") assert.fail(`import circle: ${[...path.slice(path.indexOf(f)), f].map((p) => relative(base, p)).join(" -> ")}`);
    state.set(f, "open");
    for (const g of graph.get(f) ?? []) visit(g, [...path, f]);
    state.set(f, "done");
  };
  for (const f of files) visit(f, []);
}

test("no import circle among the coordinator's files", () => {
  assertNoCircle(files, src);
});

test("no import circle inside any other service (the files one PPO iteration goes through import in one direction)", () => {
  const services = resolve(src, "..", "..");
  const others = readdirSync(services).filter((d) => d !== "ppo-coordinator" && existsSync(join(services, d, "src")));
  assert.ok(others.length >= 4, `found ${others.join(", ")}`);
  for (const d of others) assertNoCircle(sourcesOf(join(services, d, "src")), join(services, d, "src"));
});

test("inside recipe/ only gateway.ts imports the generated proto code", () => {
  const recipe = files.filter((f) => relative(src, f).startsWith("recipe"));
  assert.ok(recipe.length > 10);
  const offenders = recipe.filter((f) => /from "@rlhf\/proto"/.test(readFileSync(f, "utf8")) && !f.endsWith("gateway.ts"));
  assert.deepEqual(offenders.map((f) => relative(src, f)), []);
});
