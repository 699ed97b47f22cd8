/**
 * Users' data files as a run reads them: the pretraining text files a path names (one file, or
 * a folder of `.txt` files), their content digest, the corpus they make (split like the Brown
 * corpus), and a comparisons file that holds either K-way rankings or pairs. Every problem is a
 * {@link DataFileError} naming the file, the line and the field.
 */
import { createHash } from "node:crypto";
import { readdirSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { DataFileError, type DataIssue, type RankingRecord, inferKind, parseJsonl, parseTextDocuments, readDataFileBytes } from "./jsonl";
import { type PretrainCorpus, type PretrainDocument, splitPretrainDocuments } from "./pretrain";

function fileError(file: string, message: string, field = "file"): DataFileError {
  return new DataFileError([{ file, line: 0, field, message }]);
}

/**
 * The text files a path names: the file itself, or the `.txt` files directly inside a folder
 * (not recursive), sorted by name. Absolute paths. A missing path, or a folder without `.txt`
 * files, is a DataFileError.
 */
export function listTextFiles(path: string): string[] {
  const abs = resolve(path);
  let st;
  try {
    st = statSync(abs);
  } catch (e) {
    throw fileError(abs, `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (st.isFile()) return [abs];
  if (!st.isDirectory()) throw fileError(abs, "is neither a file nor a folder");
  const files = readdirSync(abs)
    .filter((n) => n.toLowerCase().endsWith(".txt"))
    .sort()
    .map((n) => join(abs, n))
    .filter((p) => statSync(p).isFile());
  if (files.length === 0) throw fileError(abs, "the folder holds no .txt files");
  return files;
}

/**
 * Hex SHA-256 over files, in order, each as its byte length (uint64 little-endian) followed by
 * its bytes: equal exactly when the same bytes are read in the same order.
 */
export function filesDigest(files: readonly string[] | readonly Uint8Array[]): string {
  const h = createHash("sha256");
  for (const f of files) {
    const bytes = typeof f === "string" ? readDataFileBytes(f) : f;
    const n = Buffer.alloc(8);
    n.writeBigUInt64LE(BigInt(bytes.length));
    h.update(n);
    h.update(bytes);
  }
  return h.digest("hex");
}

/** A corpus made of text files, with where each document came from. */
export interface TextCorpus extends PretrainCorpus {
  /** Hex SHA-256 of the files' bytes ({@link filesDigest}). */
  readonly digest: string;
  /** The files, in order. */
  readonly files: readonly string[];
  /** `file:line` of each document's first line, train then validation, for messages. */
  readonly trainSources: readonly string[];
  readonly validSources: readonly string[];
}

/**
 * Reads plain-text pretraining files (documents separated by blank lines; see
 * `parseTextDocuments`) into a corpus: every file's documents in file order, then split by
 * {@link splitPretrainDocuments} with `validFraction`. The first bad line (not UTF-8, a NUL
 * character, too long) or an empty file throws a DataFileError naming file and line. Document
 * ids are `<file name>#<n>` (n from 1 within the file), category `user`.
 */
export function loadTextCorpus(files: readonly string[], validFraction: number): TextCorpus {
  const docs: { doc: PretrainDocument; source: string }[] = [];
  const contents: Uint8Array[] = [];
  for (const file of files) {
    const bytes = readDataFileBytes(file);
    contents.push(bytes);
    const r = parseTextDocuments(bytes, { file });
    r.records.forEach((text, i) => docs.push({ doc: { id: `${basename(file)}#${i + 1}`, category: "user", text }, source: `${file}:${r.recordLines[i]}` }));
  }
  const split = splitPretrainDocuments(docs, validFraction);
  return {
    train: split.train.map((d) => d.doc),
    valid: split.valid.map((d) => d.doc),
    trainSources: split.train.map((d) => d.source),
    validSources: split.valid.map((d) => d.source),
    digest: filesDigest(contents),
    files: [...files],
  };
}

/** What {@link readComparisonsFile} read. */
export interface Comparisons {
  /** The file's format: K-way rankings, or pairs (each read as a ranking of K = 2, chosen first). */
  readonly kind: "rankings" | "pairs";
  readonly records: RankingRecord[];
  /** 1-based line of each record. */
  readonly recordLines: number[];
  /** Fields that are not part of the format (ignored). */
  readonly warnings: DataIssue[];
}

/**
 * Reads a comparisons file: JSONL rankings `{prompt, responses[], ranking[]}` or pairs
 * `{prompt, chosen, rejected}`. The format is the one of the file's first JSON object (by its
 * fields, see `inferKind`) and every line must have it. Pairs become rankings of K = 2:
 * `{responses: [chosen, rejected], ranking: [0, 1]}`. The first bad line throws a DataFileError.
 */
export function readComparisonsFile(path: string): Comparisons {
  const bytes = readDataFileBytes(path);
  let kind: "rankings" | "pairs" | undefined;
  let line = 0;
  for (const text of Buffer.from(bytes).toString("utf8").split("\n")) {
    line++;
    if (text.trim() === "") continue;
    let k: string | undefined;
    try {
      k = inferKind(JSON.parse(text));
    } catch {
      // parseJsonl below reports it with its line
    }
    if (k === "rankings" || k === "pairs") kind = k;
    else if (k !== undefined) {
      throw new DataFileError([
        { file: path, line, field: "record", message: `a ${k} record: a comparisons file holds rankings {prompt, responses, ranking} or pairs {prompt, chosen, rejected}` },
      ]);
    }
    break;
  }
  if (kind === undefined) kind = "rankings"; // parseJsonl names the first bad line, or the empty file
  if (kind === "pairs") {
    const r = parseJsonl(bytes, "pairs", { file: path });
    return { kind, records: r.records.map((p) => ({ prompt: p.prompt, responses: [p.chosen, p.rejected], ranking: [0, 1] })), recordLines: r.recordLines, warnings: r.warnings };
  }
  const r = parseJsonl(bytes, "rankings", { file: path });
  return { kind, records: r.records, recordLines: r.recordLines, warnings: r.warnings };
}
