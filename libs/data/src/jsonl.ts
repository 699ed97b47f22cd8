/**
 * Users' own data: JSONL files of SFT demonstrations, K-way rankings, pairs or prompts, and
 * plain-text pretraining files. Readers return typed records and every problem as
 * `{file, line, field, message}`; writers produce the same formats.
 *
 * Formats (one JSON object per line; blank lines ignored; fields not listed are ignored):
 * - sft:      `{"prompt": string, "completion": string}`
 * - rankings: `{"prompt": string, "responses": string[K], "ranking": int[K]}`, K >= 2, where
 *             `ranking[i]` is the number of responses strictly better than response i: 0 = best,
 *             tied responses share the lowest rank of their group (`[0, 0, 2]`, not `[0, 0, 1]`);
 *             without ties it is a permutation of 0..K-1. Responses must be distinct and not all tied.
 * - pairs:    `{"prompt": string, "chosen": string, "rejected": string}` (chosen preferred, distinct)
 * - prompts:  `{"prompt": string}`
 * - text:     UTF-8 plain text; documents are separated by one or more blank lines.
 * Texts must not be empty or whitespace only. Lines are limited to `maxLineBytes` (default 1 MiB).
 */
import { closeSync, constants as fsConstants, fstatSync, openSync, readSync, writeFileSync } from "node:fs";
import { extname } from "node:path";
import { InvalidArgumentError } from "@rlhf/errors";
import { canonicalResponse } from "./words";

/** The JSONL record kinds. */
export type JsonlKind = "sft" | "rankings" | "pairs" | "prompts";
/** Every kind of data file: the JSONL kinds and plain `text`. */
export type DataKind = JsonlKind | "text";
/** The JSONL kinds in a fixed order. */
export const JSONL_KINDS: readonly JsonlKind[] = ["sft", "rankings", "pairs", "prompts"];
/** All data file kinds. */
export const DATA_KINDS: readonly DataKind[] = [...JSONL_KINDS, "text"];

/** A supervised demonstration. */
export interface SftRecord {
  prompt: string;
  completion: string;
}
/** K responses to one prompt with their ranking (see the module comment for the rank convention). */
export interface RankingRecord {
  prompt: string;
  responses: string[];
  ranking: number[];
}
/** One comparison: `chosen` preferred to `rejected`. */
export interface PairRecord {
  prompt: string;
  chosen: string;
  rejected: string;
}
/** A prompt alone (PPO or evaluation). */
export interface PromptRecord {
  prompt: string;
}
/** Record type by kind. */
export interface JsonlRecordOf {
  sft: SftRecord;
  rankings: RankingRecord;
  pairs: PairRecord;
  prompts: PromptRecord;
}

/** One problem in a data file. `line` is 1-based; 0 means the whole file. */
export interface DataIssue {
  readonly file: string;
  readonly line: number;
  readonly field: string;
  readonly message: string;
}

/** `file:line: field: message` (`file: field: message` for whole-file problems). */
export function formatIssue(i: DataIssue): string {
  return `${i.file}${i.line > 0 ? `:${i.line}` : ""}: ${i.field}: ${i.message}`;
}

/** Thrown by a reader without `skipBad` at the first bad line; `issues` are that line's problems. */
export class DataFileError extends InvalidArgumentError {
  readonly issues: readonly DataIssue[];
  constructor(issues: readonly DataIssue[]) {
    const first = issues[0];
    super(`${first.file}${first.line > 0 ? `:${first.line}` : ""}: ${first.field}`, first.message + (issues.length > 1 ? ` (and ${issues.length - 1} more on this line)` : ""));
    this.issues = issues;
  }
}

/** Options of the readers. */
export interface ReadOptions {
  /** Skip bad lines and report them, instead of throwing at the first one (default false). */
  skipBad?: boolean;
  /** Longest line accepted, in bytes (default {@link DEFAULT_MAX_LINE_BYTES}). */
  maxLineBytes?: number;
  /** Name used in messages (default: the path). */
  file?: string;
}

/** Default line limit: 1 MiB. */
export const DEFAULT_MAX_LINE_BYTES = 1 << 20;

/** What a reader returns. */
export interface ReadResult<T> {
  readonly records: T[];
  /** 1-based line of each record (text: a document's first line), for messages about a record. */
  readonly recordLines: number[];
  /** Every problem found (empty unless `skipBad`; without it the first bad line throws). */
  readonly errors: DataIssue[];
  /** Fields that are not part of the format (ignored), reported once per field name. */
  readonly warnings: DataIssue[];
  /** Number of bad lines skipped. */
  readonly skipped: number;
  /** Number of lines read (blank ones included). */
  readonly lines: number;
}

/** A problem with one field of one record. */
export interface FieldError {
  readonly field: string;
  readonly message: string;
}

function typeName(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  return typeof v;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function text(obj: Record<string, unknown>, field: string, errors: FieldError[], label = field): string | undefined {
  if (!(field in obj)) {
    errors.push({ field: label, message: "missing field" });
    return undefined;
  }
  const v = obj[field];
  if (typeof v !== "string") {
    errors.push({ field: label, message: `expected a string, got ${typeName(v)}` });
    return undefined;
  }
  if (v.trim() === "") {
    errors.push({ field: label, message: "empty text" });
    return undefined;
  }
  return v;
}

/**
 * Whether `ranking` is valid for K = ranking.length under the convention rank = number of
 * strictly better responses: each distinct rank r must equal the number of ranks below it.
 */
export function isValidRanking(ranking: readonly number[]): boolean {
  const sorted = [...ranking].sort((a, b) => a - b);
  for (let p = 0; p < sorted.length; p++) {
    if (!Number.isInteger(sorted[p])) return false;
    if (p === 0 ? sorted[p] !== 0 : sorted[p] !== sorted[p - 1] && sorted[p] !== p) return false;
  }
  return true;
}

/**
 * Checks one parsed JSON value as a record of `kind`: the typed record, or every field problem
 * found (missing field, wrong type, empty text, K < 2, duplicate responses, bad ranking).
 */
export function checkRecord<K extends JsonlKind>(kind: K, value: unknown): { record?: JsonlRecordOf[K]; errors: FieldError[] } {
  const errors: FieldError[] = [];
  if (!isObject(value)) return { errors: [{ field: "record", message: `expected a JSON object, got ${typeName(value)}` }] };
  const prompt = text(value, "prompt", errors);
  let record: JsonlRecordOf[JsonlKind] | undefined;
  switch (kind) {
    case "prompts":
      if (prompt !== undefined) record = { prompt };
      break;
    case "sft": {
      const completion = text(value, "completion", errors);
      if (prompt !== undefined && completion !== undefined) record = { prompt, completion };
      break;
    }
    case "pairs": {
      const chosen = text(value, "chosen", errors);
      const rejected = text(value, "rejected", errors);
      if (chosen !== undefined && rejected !== undefined && canonicalResponse(chosen) === canonicalResponse(rejected)) {
        errors.push({ field: "rejected", message: "identical to chosen: a pair needs two different responses" });
      } else if (prompt !== undefined && chosen !== undefined && rejected !== undefined) record = { prompt, chosen, rejected };
      break;
    }
    case "rankings": {
      const responses = checkResponses(value, errors);
      const ranking = checkRanking(value, responses?.length, errors);
      if (prompt !== undefined && responses && ranking && errors.length === 0) record = { prompt, responses, ranking };
      break;
    }
    default:
      throw new InvalidArgumentError("kind", `unknown kind "${String(kind)}"; one of ${JSONL_KINDS.join(", ")}`);
  }
  return errors.length ? { errors } : { record: record as JsonlRecordOf[K], errors };
}

function checkResponses(obj: Record<string, unknown>, errors: FieldError[]): string[] | undefined {
  if (!("responses" in obj)) {
    errors.push({ field: "responses", message: "missing field" });
    return undefined;
  }
  const v = obj.responses;
  if (!Array.isArray(v)) {
    errors.push({ field: "responses", message: `expected an array of strings, got ${typeName(v)}` });
    return undefined;
  }
  if (v.length < 2) {
    errors.push({ field: "responses", message: `K = ${v.length}: a ranking needs at least 2 responses` });
    return undefined;
  }
  const out: string[] = [];
  const seen = new Map<string, number>();
  let ok = true;
  v.forEach((r: unknown, i: number) => {
    const field = `responses[${i}]`;
    if (typeof r !== "string") {
      errors.push({ field, message: `expected a string, got ${typeName(r)}` });
      ok = false;
      return;
    }
    if (r.trim() === "") {
      errors.push({ field, message: "empty text" });
      ok = false;
      return;
    }
    const key = canonicalResponse(r);
    const prev = seen.get(key);
    if (prev !== undefined) {
      errors.push({ field, message: `duplicate of responses[${prev}]` });
      ok = false;
    } else seen.set(key, i);
    out.push(r);
  });
  return ok ? out : undefined;
}

function checkRanking(obj: Record<string, unknown>, k: number | undefined, errors: FieldError[]): number[] | undefined {
  if (!("ranking" in obj)) {
    errors.push({ field: "ranking", message: "missing field" });
    return undefined;
  }
  const v = obj.ranking;
  if (!Array.isArray(v)) {
    errors.push({ field: "ranking", message: `expected an array of integers, got ${typeName(v)}` });
    return undefined;
  }
  let ok = true;
  v.forEach((r: unknown, i: number) => {
    if (typeof r !== "number" || !Number.isInteger(r)) {
      errors.push({ field: `ranking[${i}]`, message: `expected an integer rank, got ${typeof r === "number" ? r : typeName(r)}` });
      ok = false;
    } else if (r < 0 || r >= v.length) {
      errors.push({ field: `ranking[${i}]`, message: `rank ${r} is outside 0..${v.length - 1}` });
      ok = false;
    }
  });
  if (!ok) return undefined;
  const ranks = v as number[];
  if (k !== undefined && ranks.length !== k) {
    errors.push({ field: "ranking", message: `has ${ranks.length} ranks for ${k} responses` });
    return undefined;
  }
  // K < 2 is reported once, on `responses`.
  if (ranks.length < 2) return undefined;
  if (!isValidRanking(ranks)) {
    errors.push({
      field: "ranking",
      message: `[${ranks.join(", ")}] is not a ranking: without ties it must be a permutation of 0..${ranks.length - 1}; tied responses share the lowest rank of their group (e.g. [0, 0, 2])`,
    });
    return undefined;
  }
  if (ranks.every((r) => r === 0)) {
    errors.push({ field: "ranking", message: "all responses are tied: nothing to learn from" });
    return undefined;
  }
  return ranks;
}

/** Which JSONL kind an object looks like, from its fields; undefined if none. */
export function inferKind(value: unknown): JsonlKind | undefined {
  if (!isObject(value)) return undefined;
  if ("responses" in value || "ranking" in value) return "rankings";
  if ("chosen" in value || "rejected" in value) return "pairs";
  if ("completion" in value) return "sft";
  if ("prompt" in value) return "prompts";
  return undefined;
}

const FIELD_ORDER: Readonly<Record<JsonlKind, readonly string[]>> = {
  sft: ["prompt", "completion"],
  rankings: ["prompt", "responses", "ranking"],
  pairs: ["prompt", "chosen", "rejected"],
  prompts: ["prompt"],
};

interface RawLine {
  readonly line: number;
  readonly text?: string;
  readonly error?: FieldError;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Splits bytes into lines (LF or CRLF), decoding each as strict UTF-8 and checking its length. */
function splitLines(data: Uint8Array, maxLineBytes: number): RawLine[] {
  if (!Number.isInteger(maxLineBytes) || maxLineBytes < 1) throw new InvalidArgumentError("maxLineBytes", `must be a positive integer, got ${maxLineBytes}`);
  const out: RawLine[] = [];
  let start = 0;
  let line = 0;
  while (start < data.length) {
    let end = data.indexOf(0x0a, start);
    if (end < 0) end = data.length;
    line++;
    let stop = end;
    if (stop > start && data[stop - 1] === 0x0d) stop--;
    const bytes = data.subarray(start, stop);
    if (bytes.length > maxLineBytes) {
      out.push({ line, error: { field: "line", message: `${bytes.length} bytes, over the limit of ${maxLineBytes} (maxLineBytes)` } });
    } else {
      try {
        let s = utf8.decode(bytes);
        if (line === 1 && s.charCodeAt(0) === 0xfeff) s = s.slice(1);
        out.push({ line, text: s });
      } catch {
        out.push({ line, error: { field: "line", message: "not valid UTF-8" } });
      }
    }
    start = end + 1;
  }
  return out;
}

function finish<T>(file: string, records: T[], recordLines: number[], errors: DataIssue[], warnings: DataIssue[], skipped: number, lines: number, skipBad: boolean, emptyMessage: string): ReadResult<T> {
  if (records.length === 0) {
    const issue: DataIssue = { file, line: 0, field: "file", message: emptyMessage };
    if (!skipBad) throw new DataFileError([issue]);
    errors.push(issue);
  }
  return { records, recordLines, errors, warnings, skipped, lines };
}

/**
 * Parses JSONL bytes or text as records of `kind`. Without `skipBad` the first bad line throws a
 * {@link DataFileError}; with it, bad lines are skipped and reported. A file with no records is
 * an error (`line` 0).
 */
export function parseJsonl<K extends JsonlKind>(data: string | Uint8Array, kind: K, opts: ReadOptions & { file: string }): ReadResult<JsonlRecordOf[K]> {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  const skipBad = opts.skipBad ?? false;
  const records: JsonlRecordOf[K][] = [];
  const recordLines: number[] = [];
  const errors: DataIssue[] = [];
  const warnings: DataIssue[] = [];
  let skipped = 0;
  const warned = new Set<string>();
  const lines = splitLines(bytes, opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES);
  for (const l of lines) {
    if (l.text !== undefined && l.text.trim() === "") continue;
    let problems: FieldError[];
    if (l.error) problems = [l.error];
    else {
      const r = parseLine(kind, l.text ?? "");
      if (r.record) {
        records.push(r.record);
        recordLines.push(l.line);
        for (const f of r.unknownFields) {
          if (warned.has(f)) continue;
          warned.add(f);
          warnings.push({ file: opts.file, line: l.line, field: f, message: `not a field of the ${kind} format (${FIELD_ORDER[kind].join(", ")}): ignored` });
        }
        continue;
      }
      problems = r.errors;
    }
    const issues = problems.map((p) => ({ file: opts.file, line: l.line, field: p.field, message: p.message }));
    if (!skipBad) throw new DataFileError(issues);
    errors.push(...issues);
    skipped++;
  }
  return finish(opts.file, records, recordLines, errors, warnings, skipped, lines.length, skipBad, `no ${kind} records`);
}

function parseLine<K extends JsonlKind>(kind: K, line: string): { record?: JsonlRecordOf[K]; errors: FieldError[]; unknownFields: string[] } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (e) {
    return { errors: [{ field: "json", message: `invalid JSON: ${(e as Error).message}` }], unknownFields: [] };
  }
  const r = checkRecord(kind, value);
  const known = FIELD_ORDER[kind];
  return { ...r, unknownFields: isObject(value) ? Object.keys(value).filter((k) => !known.includes(k)) : [] };
}

/** The largest data file read (256 MiB): a bigger one is refused before any byte is read. */
export const MAX_DATA_FILE_BYTES = 256 * 1024 * 1024;

/**
 * The bytes of a data file, bounded: it must be a regular file (a device such as `/dev/zero`, a
 * FIFO or a socket is refused without reading: one never ends, the other blocks) of at most
 * `maxBytes`. The file is opened non-blocking (opening a FIFO would otherwise wait for a writer)
 * and checked on the open descriptor, then read to the size it had. Any failure is a
 * DataFileError naming `file` (`file: cannot read: ENOENT`, `file: is a FIFO, not a regular
 * file`, `file: is 300000000 bytes, more than the limit of 268435456`).
 */
export function readDataFileBytes(path: string, file = path, maxBytes = MAX_DATA_FILE_BYTES): Buffer {
  const fail = (message: string) => new DataFileError([{ file, line: 0, field: "file", message }]);
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (e) {
    throw fail(`cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) {
      const what = st.isDirectory() ? "a folder" : st.isFIFO() ? "a FIFO" : st.isCharacterDevice() || st.isBlockDevice() ? "a device" : st.isSocket() ? "a socket" : "not a file";
      throw fail(`is ${what}, not a regular file`);
    }
    if (st.size > maxBytes) throw fail(`is ${st.size} bytes, more than the limit of ${maxBytes}`);
    const buf = Buffer.allocUnsafe(st.size);
    let off = 0;
    while (off < st.size) {
      const n = readSync(fd, buf, off, st.size - off, off);
      if (n === 0) break; // truncated while read: what is there
      off += n;
    }
    return off === st.size ? buf : buf.subarray(0, off);
  } catch (e) {
    if (e instanceof DataFileError) throw e;
    throw fail(`cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  } finally {
    closeSync(fd);
  }
}

/** Reads a JSONL file of `kind` (see {@link parseJsonl}); an unreadable file is a DataFileError. */
export function readJsonlFile<K extends JsonlKind>(path: string, kind: K, opts: ReadOptions = {}): ReadResult<JsonlRecordOf[K]> {
  const file = opts.file ?? path;
  return parseJsonl(readDataFileBytes(path, file), kind, { ...opts, file });
}

/**
 * Parses a plain-text pretraining file: strict UTF-8, no NUL characters; documents are runs of
 * non-blank lines separated by blank lines (lines of a document are joined with `\n`). A file
 * with no text is an error.
 */
export function parseTextDocuments(data: string | Uint8Array, opts: ReadOptions & { file: string }): ReadResult<string> {
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
  const skipBad = opts.skipBad ?? false;
  const docs: string[] = [];
  const docLines: number[] = [];
  const errors: DataIssue[] = [];
  let skipped = 0;
  let current: string[] = [];
  let firstLine = 0;
  const flush = () => {
    if (current.length) {
      docs.push(current.join("\n"));
      docLines.push(firstLine);
    }
    current = [];
  };
  const lines = splitLines(bytes, opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES);
  for (const l of lines) {
    let problem = l.error ? { ...l.error, field: "text" } : undefined;
    if (!problem && l.text?.includes("\u0000")) problem = { field: "text", message: "contains a NUL character (a binary file?)" };
    if (problem) {
      const issue = { file: opts.file, line: l.line, ...problem };
      if (!skipBad) throw new DataFileError([issue]);
      errors.push(issue);
      skipped++;
      continue;
    }
    const t = l.text ?? "";
    if (t.trim() === "") flush();
    else {
      if (current.length === 0) firstLine = l.line;
      current.push(t);
    }
  }
  flush();
  return finish(opts.file, docs, docLines, errors, [], skipped, lines.length, skipBad, "empty text: the file has no text");
}

/** Reads a plain-text pretraining file (see {@link parseTextDocuments}); an unreadable file is a DataFileError. */
export function readTextFile(path: string, opts: ReadOptions = {}): ReadResult<string> {
  const file = opts.file ?? path;
  return parseTextDocuments(readDataFileBytes(path, file), { ...opts, file });
}


/**
 * JSONL text of records (one per line, fields in the documented order, other fields dropped).
 * Throws InvalidArgumentError (`records[i].field`) for a record the reader would reject.
 */
export function formatJsonl<K extends JsonlKind>(kind: K, records: readonly JsonlRecordOf[K][]): string {
  const parts: string[] = [];
  records.forEach((r, i) => {
    const c = checkRecord(kind, r);
    if (!c.record) throw new InvalidArgumentError(`records[${i}].${c.errors[0].field}`, c.errors[0].message);
    const obj: Record<string, unknown> = {};
    for (const f of FIELD_ORDER[kind]) obj[f] = (r as unknown as Record<string, unknown>)[f];
    parts.push(JSON.stringify(obj) + "\n");
  });
  return parts.join("");
}

/** Writes records as a JSONL file (see {@link formatJsonl}). */
export function writeJsonlFile<K extends JsonlKind>(path: string, kind: K, records: readonly JsonlRecordOf[K][]): void {
  writeFileSync(path, formatJsonl(kind, records));
}

/**
 * Plain text of documents for {@link parseTextDocuments}: each trimmed, blank lines inside a
 * document removed (they would split it), documents separated by one blank line. Throws for an
 * empty document.
 */
export function formatTextDocuments(docs: readonly string[]): string {
  return docs
    .map((d, i) => {
      const lines = d.split(/\r?\n/).filter((l) => l.trim() !== "");
      if (lines.length === 0) throw new InvalidArgumentError(`docs[${i}]`, "empty text");
      return lines.join("\n") + "\n";
    })
    .join("\n");
}

/** Writes documents as a plain-text file (see {@link formatTextDocuments}). */
export function writeTextFile(path: string, docs: readonly string[]): void {
  writeFileSync(path, formatTextDocuments(docs));
}

/** What {@link checkDataFile} found. */
export interface CheckReport {
  readonly file: string;
  /** The kind checked (given or inferred); undefined when it could not be inferred. */
  readonly kind: DataKind | undefined;
  readonly inferred: boolean;
  /** Valid records (documents for text). */
  readonly records: number;
  readonly lines: number;
  /** Bad lines. */
  readonly skipped: number;
  readonly errors: DataIssue[];
  /** Ignored fields (see {@link ReadResult.warnings}). */
  readonly warnings: DataIssue[];
}

/**
 * Validates a data file and reports every problem (never throws for bad content). Without
 * `kind`: `.txt` files are text; otherwise the kind is inferred from the first line that parses
 * as a JSON object ({@link inferKind}); a file with no such line is reported.
 */
export function checkDataFile(path: string, opts: { kind?: DataKind; maxLineBytes?: number } = {}): CheckReport {
  const data = readDataFileBytes(path);
  let kind = opts.kind;
  if (kind !== undefined && !DATA_KINDS.includes(kind)) throw new InvalidArgumentError("kind", `unknown kind "${kind}"; one of ${DATA_KINDS.join(", ")}`);
  const inferred = kind === undefined;
  if (kind === undefined) kind = extname(path).toLowerCase() === ".txt" ? "text" : inferFromLines(data, opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES);
  if (kind === undefined) {
    return {
      file: path,
      kind,
      inferred,
      records: 0,
      lines: 0,
      skipped: 0,
      warnings: [],
      errors: [{ file: path, line: 0, field: "kind", message: `cannot tell the kind: no line is a JSON object with a known field set; give the kind (${DATA_KINDS.join(", ")})` }],
    };
  }
  const ro = { skipBad: true, maxLineBytes: opts.maxLineBytes, file: path };
  const r = kind === "text" ? parseTextDocuments(data, ro) : parseJsonl(data, kind, ro);
  return { file: path, kind, inferred, records: r.records.length, lines: r.lines, skipped: r.skipped, errors: r.errors, warnings: r.warnings };
}

function inferFromLines(data: Uint8Array, maxLineBytes: number): JsonlKind | undefined {
  for (const l of splitLines(data, maxLineBytes)) {
    if (!l.text || l.text.trim() === "") continue;
    try {
      const k = inferKind(JSON.parse(l.text));
      if (k) return k;
    } catch {
      // not JSON: look further
    }
  }
  return undefined;
}
