/**
 * Which corpus a request's batches come from: the built-in one (tokenised at start), or a user's
 * text files named by the request (`TextCorpus`), read, split and tokenised on first use with the
 * service's tokenizer and kept in a small least-recently-used cache. No gRPC here.
 */
import { statSync } from "node:fs";
import { isAbsolute } from "node:path";
import { loadTextCorpus } from "@rlhf/data";
import { FailedPreconditionError, InvalidArgumentError, NotFoundError, confinePath, type PathRoots } from "@rlhf/errors";
import { TokenizedCorpus } from "./corpus";

/** Most files one TextCorpus may name. */
export const MAX_CORPUS_FILES = 1024;

/** A request's text corpus (the proto message's fields). */
export interface TextCorpusSpec {
  files: string[];
  validationFraction: number;
  contentDigest: string;
}

/** Options of {@link Corpora}. */
export interface CorporaOptions {
  /** Text corpora kept tokenised (least recently used dropped first). */
  maxCached: number;
  /** DATA_ROOT: text files must resolve (symlinks included) inside these; unset: anywhere (tests). */
  dataRoots?: PathRoots;
  /** Told about each text corpus loaded. */
  onLoad?: (info: { files: number; documents: { train: number; validation: number }; tokens: { train: number; validation: number }; contentDigest: string; ms: number }) => void;
}

/** The built-in corpus and the text corpora requests name. */
export class Corpora {
  private readonly cache = new Map<string, TokenizedCorpus>();

  constructor(
    /** The built-in corpus (GetInfo describes it). */
    readonly builtin: TokenizedCorpus,
    private readonly opts: CorporaOptions,
  ) {}

  /** Text corpora cached now. */
  get cachedTextCorpora(): number {
    return this.cache.size;
  }

  /**
   * The corpus of a request: the built-in one when `spec` is unset, else its text files (loaded
   * now unless cached). INVALID_ARGUMENT for a bad spec, a bad line or an empty file;
   * PERMISSION_DENIED for a path outside DATA_ROOT; NOT_FOUND for a missing file; FAILED_PRECONDITION when the bytes read do not
   * match `content_digest`.
   */
  get(spec: TextCorpusSpec | undefined): TokenizedCorpus {
    if (!spec) return this.builtin;
    const { files, validationFraction: f, contentDigest } = spec;
    if (files.length < 1 || files.length > MAX_CORPUS_FILES) throw new InvalidArgumentError("text_corpus.files", `must name 1..${MAX_CORPUS_FILES} files, got ${files.length}`);
    // Each file's real path (symlinks resolved), inside DATA_ROOT: what is read below.
    const paths = files.map((p, i) => {
      const field = `text_corpus.files[${i}]`;
      if (p && !p.includes("\0") && !isAbsolute(p)) throw new InvalidArgumentError(field, `must be an absolute path, got ${JSON.stringify(p)}`);
      return confinePath(p, field, this.opts.dataRoots);
    });
    if (!Number.isFinite(f) || f < 0 || f > 0.5) throw new InvalidArgumentError("text_corpus.validation_fraction", `must be in [0, 0.5], got ${f}`);
    if (contentDigest !== "" && !/^[0-9a-f]{64}$/.test(contentDigest)) throw new InvalidArgumentError("text_corpus.content_digest", `must be empty or 64 lower-case hex digits, got ${JSON.stringify(contentDigest)}`);
    const key = JSON.stringify([files, f, contentDigest]);
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key); // re-insert: most recently used last
      this.cache.set(key, hit);
      return hit;
    }
    files.forEach((p, i) => {
      let isFile = false;
      try {
        isFile = statSync(paths[i]).isFile();
      } catch {
        throw new NotFoundError(`text_corpus.files[${i}]`, `${p}: no such file on this service's machine`);
      }
      if (!isFile) throw new InvalidArgumentError(`text_corpus.files[${i}]`, `${p} is not a file`);
    });
    const started = Date.now();
    const text = loadTextCorpus(paths, f);
    if (contentDigest !== "" && text.digest !== contentDigest) {
      throw new FailedPreconditionError(`text_corpus: the files read here have SHA-256 ${text.digest}, not the content_digest ${contentDigest}: they changed, or this service sees other files than the caller`);
    }
    const corpus = new TokenizedCorpus(text, this.builtin.tokenizer, `text:${text.digest.slice(0, 12)}`);
    this.opts.onLoad?.({
      files: files.length,
      documents: { train: corpus.train.documents, validation: corpus.validation.documents },
      tokens: { train: corpus.train.tokens.length, validation: corpus.validation.tokens.length },
      contentDigest: text.digest,
      ms: Date.now() - started,
    });
    if (this.cache.size >= this.opts.maxCached) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(key, corpus);
    return corpus;
  }
}
