// docs/architecture.md draws the coordinator's layers and one PPO iteration through its files:
// every file it names must exist, every code name it uses must be in the sources, and the files
// that serve the iteration's calls must be the ones it names (at most twelve), so that the
// picture cannot drift from the code unnoticed.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";

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

test("docs/architecture.md: every code name of the recipe section is in the sources", () => {
  const code = ["services", "libs"]
    .flatMap((top) => readdirSync(join(root, top)).map((d) => join(root, top, d, "src")))
    .filter((d) => existsSync(d))
    .flatMap(sources)
    .map((f) => readFileSync(f, "utf8"))
    .join("\n");
  const names = [...section.matchAll(/`([A-Za-z][\w]*(?:\.[a-z]\w*)?)`/g)].map((m) => m[1]).filter((n) => !n.endsWith(".json") && !/^(libs|services)$/.test(n));
  assert.ok(names.length >= 8, `found ${names.length} code names`);
  for (const n of names) {
    const last = n.split(".").pop() as string;
    assert.ok(new RegExp(`\\b${last}\\b`).test(code), `${n} is named in docs/architecture.md but in no services/*/src or libs/*/src`);
  }
});

/** The file names of the table "One PPO iteration through the files" (recipe/ prefixes dropped). */
function iterationFiles(): Set<string> {
  const from = section.indexOf("One PPO iteration through the files");
  assert.ok(from >= 0, "the recipe section has the table 'One PPO iteration through the files'");
  const rows = section.slice(from).split("\n").filter((l) => l.startsWith("| ") && !l.startsWith("| step"));
  return new Set(rows.flatMap((r) => [...r.matchAll(/([\w./-]+\.ts)\b/g)].map((m) => m[1].replace(/^recipe\//, ""))));
}

test("docs/architecture.md: one PPO iteration is followed through at most twelve files", () => {
  const files = iterationFiles();
  assert.ok(files.size >= 8 && files.size <= 12, `the table names ${files.size} files: ${[...files].join(", ")}`);
});

test("docs/architecture.md: the handlers of the iteration's calls are in the files the table names, and what they import is named", () => {
  const files = iterationFiles();
  // The calls of one PPO iteration (recipe/gateway.ts), by service and handler key in its server.ts.
  const calls: Array<[string, string]> = [
    ["policy", "generate"],
    ["policy", "evaluate"],
    ["policy", "ppoUpdate"],
    ["reward-model", "score"],
    ["reference-model", "logProbs"],
    ["pretrain-mix", "ptxGradients"],
  ];
  for (const [service, key] of calls) {
    const dir = join(root, "services", service, "src");
    const server = readFileSync(join(dir, "server.ts"), "utf8");
    const handler = new RegExp(`\\b${key}: \\w+\\(log, (\\w+)\\(`).exec(server)?.[1];
    assert.ok(handler, `${service}/src/server.ts registers ${key}`);
    const from = new RegExp(`import \\{[^}]*\\b${handler}\\b[^}]*\\} from "\\./([^"]+)"`).exec(server)?.[1];
    assert.ok(from, `${service}/src/server.ts imports ${handler} from one of its files`);
    assert.ok(files.has(`${from}.ts`), `${service}'s ${key} is served by ${from}.ts, which the table does not name`);
    // What the handler's file imports from its own service is in the table or among the helpers.
    const text = readFileSync(join(dir, `${from}.ts`), "utf8");
    for (const m of text.matchAll(/from "(\.{1,2}\/[^"]+)"/g)) {
      const rel = relative(dir, resolve(dirname(join(dir, from)), m[1])) + ".ts";
      assert.ok(files.has(rel) || section.includes(`\`${rel}\``), `${service}/src/${from}.ts imports ${rel}, which the recipe section does not name`);
    }
  }
});
