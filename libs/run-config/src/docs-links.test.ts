// The documentation's links and tables: every relative link or image in README.md, docs/*.md and
// the packages' Markdown files names a file or folder inside the repository, every `#anchor` is a
// heading of its target (GitHub's slugs), and every table row has its header's number of cells.
// It lives here because this package's tests are light and it already keeps a document (CONFIG.md)
// right; turbo.json lists the Markdown files among this package's test inputs, so an edit to any
// of them runs it again. Needs nothing built: `pnpm --filter @rlhf/run-config test`, or alone
// `node --import tsx --test libs/run-config/src/docs-links.test.ts` (about a second).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve, sep } from "node:path";

/** Repository root (libs/run-config/src/../../..). */
const ROOT = resolve(__dirname, "..", "..", "..");

/** Folders whose Markdown files are checked besides README.md and docs/. */
const PACKAGE_FOLDERS = ["cli", "deploy", "docs", "e2e", "examples", "libs", "proto", "services"];
const SKIP = new Set(["node_modules", "dist", "gen", ".git", ".turbo", "runs"]);

/** The Markdown files checked: README.md and every *.md under PACKAGE_FOLDERS (sorted, relative). */
function markdownFiles(root: string): string[] {
  const out: string[] = [];
  if (existsSync(join(root, "README.md"))) out.push("README.md");
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      if (SKIP.has(name)) continue;
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith(".md")) out.push(relative(root, p).split(sep).join("/"));
    }
  };
  for (const f of PACKAGE_FOLDERS) if (existsSync(join(root, f))) walk(join(root, f));
  return out.sort();
}

/** Lines outside fenced code blocks, with their 1-based numbers. */
function proseLines(md: string): { line: string; n: number }[] {
  const out: { line: string; n: number }[] = [];
  let fence: string | undefined;
  md.split("\n").forEach((line, i) => {
    const m = /^\s{0,3}(`{3,}|~{3,})/.exec(line);
    if (m) {
      if (fence === undefined) fence = m[1][0];
      else if (m[1][0] === fence) fence = undefined;
      return;
    }
    if (fence === undefined) out.push({ line, n: i + 1 });
  });
  return out;
}

/**
 * GitHub's heading anchor (github-slugger): lower case, punctuation and symbols dropped except
 * `-` and `_`, each space a `-`. Inline code, links and emphasis count by their text.
 */
function slug(heading: string): string {
  // Outside code spans, links count by their text and HTML tags not at all; inside, every character.
  const text = heading
    .split(/(`+[^`]*`+)/)
    .map((part, i) => (i % 2 === 1 ? part : part.replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1").replace(/<[^>]+>/g, "")))
    .join("")
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, "").replace(/ /g, "-");
}

/** The anchors a Markdown file defines: its headings' slugs (repeats get -1, -2, ...) and HTML ids. */
function anchorsOf(md: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const { line } of proseLines(md)) {
    const h = /^\s{0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$/.exec(line);
    if (h) {
      const base = slug(h[1]);
      const k = seen.get(base) ?? 0;
      seen.set(base, k + 1);
      out.add(k === 0 ? base : `${base}-${k}`);
    }
    for (const m of line.matchAll(/<a\s+(?:name|id)="([^"]+)"/g)) out.add(m[1]);
  }
  return out;
}

/** Link targets of one line (inline links, images, reference definitions, HTML src/href), code spans removed. */
function targetsOf(line: string): string[] {
  const text = line.replace(/(`+)[\s\S]*?\1/g, "");
  const out: string[] = [];
  for (const m of text.matchAll(/\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)/g)) out.push(m[1]);
  const def = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/.exec(text);
  if (def) out.push(def[1]);
  for (const m of text.matchAll(/<(?:img|a)\s[^>]*?(?:src|href)="([^"]+)"/g)) out.push(m[1]);
  return out;
}

/** Every broken link of the given files, as `file:line: target: why`. */
function brokenLinks(root: string, files: string[]): string[] {
  const problems: string[] = [];
  const anchorCache = new Map<string, Set<string>>();
  const anchors = (abs: string) => {
    let a = anchorCache.get(abs);
    if (!a) anchorCache.set(abs, (a = anchorsOf(readFileSync(abs, "utf8"))));
    return a;
  };
  for (const file of files) {
    const abs = join(root, file);
    for (const { line, n } of proseLines(readFileSync(abs, "utf8"))) {
      for (const target of targetsOf(line)) {
        const where = `${file}:${n}: ${target}`;
        if (target === "") {
          problems.push(`${where}: empty link`);
          continue;
        }
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto: ... leave the repository by design
        const hash = target.indexOf("#");
        const pathPart = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
        const anchor = hash < 0 ? undefined : target.slice(hash + 1);
        if (pathPart.startsWith("/")) {
          problems.push(`${where}: absolute path (write it relative to ${file})`);
          continue;
        }
        const dest = pathPart === "" ? abs : resolve(dirname(abs), pathPart);
        const rel = relative(root, dest);
        if (rel.startsWith("..") || resolve(root, rel) !== dest) {
          problems.push(`${where}: points outside the repository`);
          continue;
        }
        if (!existsSync(dest)) {
          problems.push(`${where}: no such file or folder ${rel.split(sep).join("/") || "."}`);
          continue;
        }
        if (anchor === undefined) continue;
        if (!dest.endsWith(".md") || statSync(dest).isDirectory()) {
          problems.push(`${where}: an anchor on a file that is not Markdown`);
          continue;
        }
        if (!anchors(dest).has(decodeURIComponent(anchor))) problems.push(`${where}: no heading with anchor #${anchor} in ${rel.split(sep).join("/")}`);
      }
    }
  }
  return problems;
}

/** Cells of a table row: split on `|` that is not escaped (GitHub splits inside code spans too). */
function cells(row: string): number {
  const inner = row.trim().replace(/^\|/, "").replace(/(?<!\\)\|$/, "");
  return inner.split(/(?<!\\)\|/).length;
}

/** Every table row whose number of cells differs from its header's, as `file:line: ...`. */
function brokenTables(root: string, files: string[]): string[] {
  const problems: string[] = [];
  for (const file of files) {
    const lines = proseLines(readFileSync(join(root, file), "utf8"));
    for (let i = 0; i + 1 < lines.length; i++) {
      const header = lines[i];
      const sepRow = lines[i + 1];
      if (sepRow.n !== header.n + 1 || !/^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)*\|?\s*$/.test(sepRow.line) || !header.line.includes("|")) continue;
      const want = cells(header.line);
      if (cells(sepRow.line) !== want) problems.push(`${file}:${sepRow.n}: the separator row has ${cells(sepRow.line)} cells, the header ${want}`);
      for (let j = i + 2; j < lines.length && lines[j].n === lines[j - 1].n + 1 && lines[j].line.trim().startsWith("|"); j++) {
        const got = cells(lines[j].line);
        if (got !== want) problems.push(`${file}:${lines[j].n}: ${got} cells, the header has ${want} (escape a | inside a cell as \\|)`);
      }
    }
  }
  return problems;
}

test("GitHub's heading anchors", () => {
  assert.equal(slug("Metrics (Prometheus / OpenTelemetry)"), "metrics-prometheus--opentelemetry");
  assert.equal(slug("Data (`libs/data`)"), "data-libsdata");
  assert.equal(slug("Results of `rlhf demo`"), "results-of-rlhf-demo");
  assert.equal(slug("Stream `RLHF_RUNS`"), "stream-rlhf_runs");
  assert.equal(slug("`rlhf watch <run-id|run-folder> [--nats URL | --runs-dir DIR] [--json]`"), "rlhf-watch-run-idrun-folder---nats-url----runs-dir-dir---json");
  assert.deepEqual([...anchorsOf("# A\n## B\n```\n# not a heading\n```\n## B\n")], ["a", "b", "b-1"]);
});

test("the checker finds a missing file, a missing anchor, a link out of the repository and a broken table", () => {
  const root = mkdtempSync(join(tmpdir(), "docs-links-"));
  mkdirSync(join(root, "docs"));
  writeFileSync(join(root, "docs", "a.md"), "# Page A\n\n## Part one\n");
  writeFileSync(
    join(root, "README.md"),
    [
      "# Top",
      "[ok](docs/a.md#part-one) [ok too](#top) [web](https://example.com) `[code](nowhere.md)`",
      "[gone](docs/b.md) [bad anchor](docs/a.md#part-two) [out](../shared/ARCHITECTURE.md)",
      "```",
      "[in a fence](nowhere.md)",
      "```",
      "| a | b |",
      "|---|---|",
      "| 1 | 2 |",
      "| 1 | `x|y` |",
      "| 1 | `x\\|y` |",
    ].join("\n"),
  );
  const files = markdownFiles(root);
  assert.deepEqual(files, ["README.md", "docs/a.md"]);
  assert.deepEqual(brokenLinks(root, files), [
    "README.md:3: docs/b.md: no such file or folder docs/b.md",
    "README.md:3: docs/a.md#part-two: no heading with anchor #part-two in docs/a.md",
    "README.md:3: ../shared/ARCHITECTURE.md: points outside the repository",
  ]);
  assert.deepEqual(brokenTables(root, files), ["README.md:10: 3 cells, the header has 2 (escape a | inside a cell as \\|)"]);
});

test("README.md and docs/ link only to files and headings inside the repository", () => {
  const files = markdownFiles(ROOT);
  assert.ok(files.includes("README.md") && files.includes("docs/README.md"), files.join(", "));
  assert.deepEqual(brokenLinks(ROOT, files), []);
});

test("every page of docs/ is listed in docs/README.md and README.md links to docs/README.md", () => {
  const index = readFileSync(join(ROOT, "docs", "README.md"), "utf8");
  const pages = readdirSync(join(ROOT, "docs")).filter((f) => f.endsWith(".md") && f !== "README.md");
  for (const p of pages) assert.ok(index.includes(`](${p})`), `docs/README.md lists ${p}`);
  assert.match(readFileSync(join(ROOT, "README.md"), "utf8"), /\]\(docs\/README\.md\)/);
});

test("every Markdown table row has as many cells as its header", () => {
  assert.deepEqual(brokenTables(ROOT, markdownFiles(ROOT)), []);
});
