// docs/architecture.md draws the coordinator's layers and one PPO iteration through its files:
// every file it names must exist, and every code name it uses must be in the sources, so that
// the picture cannot drift from the code unnoticed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";

const root = resolve(__dirname, "../../..");
const doc = readFileSync(join(root, "docs/architecture.md"), "utf8");
const section = doc.slice(doc.indexOf("## The coordinator's recipe"), doc.indexOf("## Layout"));

/** Every .ts file below `dir` (sources only). */
function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? (e.name === "node_modules" || e.name === "dist" ? [] : sources(join(dir, e.name))) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []));
}

test("docs/architecture.md: the recipe section exists and names files", () => {
  assert.ok(section.length > 500, "the section 'The coordinator's recipe' comes before '## Layout'");
});

test("docs/architecture.md: every file of the recipe section exists (coordinator or the service named on its line)", () => {
  const services = ["ppo-coordinator", "policy", "reward-model", "reference-model", "pretrain-mix"];
  const files = [...new Set([...section.matchAll(/([\w./-]+\.ts)\b/g)].map((m) => m[1]))];
  assert.ok(files.length >= 15, `found ${files.length} file names`);
  for (const f of files) {
    const rel = f.replace(/^services\/ppo-coordinator\/src\//, "");
    const found = services.some((s) => existsSync(join(root, "services", s, "src", rel)) || existsSync(join(root, "services", s, "src", "recipe", rel)));
    assert.ok(found, `${f} is named in docs/architecture.md but exists in no service's src/ (or the coordinator's recipe/)`);
  }
});

test("docs/architecture.md: every code name of the recipe section is in the coordinator's sources", () => {
  const code = sources(join(root, "services/ppo-coordinator/src")).map((f) => readFileSync(f, "utf8")).join("\n");
  const names = [...section.matchAll(/`([A-Za-z][\w]*(?:\.[a-z]\w*)?)`/g)].map((m) => m[1]).filter((n) => !n.endsWith(".json") && !/^(libs|services)$/.test(n));
  assert.ok(names.length >= 8, `found ${names.length} code names`);
  for (const n of names) {
    const last = n.split(".").pop() as string;
    assert.ok(new RegExp(`\\b${last}\\b`).test(code), `${n} is named in docs/architecture.md but not in services/ppo-coordinator/src`);
  }
});
