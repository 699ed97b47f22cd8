/**
 * The machinery behind the run config: field builders that carry their TypeScript type, and one
 * walk over a schema that validates user JSON, fills defaults and collects every error with its
 * key path. The schema itself (keys, defaults, limits, paper values) is in `run-config.ts`; this
 * file knows nothing about RLHF.
 */
import { isAbsolute } from "node:path";

/** Reads a resolved value by dotted path (`"model.preset"`); undefined when absent or invalid. */
export type ConfigReader = (path: string) => unknown;

/** A default computed from other keys (after static defaults and user values are in place). */
export interface DerivedDefault<T> {
  /** Returns the value, or undefined when a key it needs is invalid (an error is reported anyway). */
  readonly derive: (get: ConfigReader) => T | undefined;
  /** How the documentation states it, e.g. "from `model.preset`". */
  readonly doc: string;
}

/** Numeric limits; each is inclusive (`min`, `max`) or exclusive (`gt`, `lt`). */
export interface NumericLimits {
  readonly min?: number;
  readonly max?: number;
  readonly gt?: number;
  readonly lt?: number;
}

/** The kinds of leaf values. */
export type LeafType = "int" | "number" | "boolean" | "string" | "enum" | "string[]" | "enum[]";

/** One key with a value. `T` is its resolved TypeScript type (phantom field `__value`). */
export interface Leaf<T> {
  readonly kind: "leaf";
  readonly type: LeafType;
  /** Whether `null` (meaning "not set") is a valid value. */
  readonly nullable: boolean;
  /** Allowed strings, for `enum` and `enum[]`. */
  readonly values?: readonly string[];
  readonly default: T | DerivedDefault<T>;
  /** Unit of a number, e.g. "tokens", "nats per sequence". */
  readonly unit?: string;
  /** InstructGPT's value (Ouyang et al. 2022, appendix C), as text; absent where the paper states none. */
  readonly paper?: string;
  readonly limits?: NumericLimits;
  /** Limits that involve other keys, as the documentation states them (checked by the cross-field rules). */
  readonly limitsNote?: string;
  /** A string that names a file or folder: it must be an absolute path (see `resolveConfigPaths`). */
  readonly isPath?: boolean;
  /** One line. */
  readonly description: string;
  readonly __value?: T;
}

/** A group of keys (a JSON object). */
export interface Section<F extends Fields = Fields> {
  readonly kind: "section";
  readonly description: string;
  readonly fields: F;
}

/** Keys of a section. */
export type Fields = { readonly [key: string]: Leaf<unknown> | Section };

/** The resolved (deep-readonly) value a schema node describes. */
export type ValueOf<N> =
  N extends Leaf<infer T> ? T : N extends Section<infer F> ? { readonly [K in keyof F]: ValueOf<F[K]> } : never;

interface CommonOptions {
  readonly description: string;
  readonly unit?: string;
  readonly paper?: string | number | boolean;
  readonly limitsNote?: string;
}

type DefaultOption<T> = T | DerivedDefault<T>;

function paperText(p: string | number | boolean | undefined): string | undefined {
  return p === undefined ? undefined : String(p);
}

function leaf<T>(type: LeafType, nullable: boolean, o: CommonOptions & { default: DefaultOption<T>; limits?: NumericLimits; values?: readonly string[]; isPath?: boolean }): Leaf<T> {
  return Object.freeze({
    ...(o.isPath ? { isPath: true } : {}),
    kind: "leaf" as const,
    type,
    nullable,
    values: o.values,
    default: o.default,
    unit: o.unit,
    paper: paperText(o.paper),
    limits: o.limits,
    limitsNote: o.limitsNote,
    description: o.description,
  });
}

type NumberOptions<T> = CommonOptions & NumericLimits & { readonly default: DefaultOption<T> };

function limitsOf(o: NumericLimits): NumericLimits | undefined {
  const l: NumericLimits = { min: o.min, max: o.max, gt: o.gt, lt: o.lt };
  return Object.values(l).some((v) => v !== undefined) ? l : undefined;
}

/** An integer key. */
export function int(o: NumberOptions<number>): Leaf<number> {
  return leaf("int", false, { ...o, limits: limitsOf(o) });
}

/** An integer key that may be `null` (not set). */
export function optionalInt(o: NumberOptions<number | null>): Leaf<number | null> {
  return leaf("int", true, { ...o, limits: limitsOf(o) });
}

/** A finite number key. */
export function num(o: NumberOptions<number>): Leaf<number> {
  return leaf("number", false, { ...o, limits: limitsOf(o) });
}

/** A finite number key that may be `null` (not set). */
export function optionalNum(o: NumberOptions<number | null>): Leaf<number | null> {
  return leaf("number", true, { ...o, limits: limitsOf(o) });
}

/** A boolean key. */
export function bool(o: CommonOptions & { readonly default: DefaultOption<boolean> }): Leaf<boolean> {
  return leaf("boolean", false, o);
}

/** One of a few strings. */
export function oneOf<const V extends string>(values: readonly V[], o: CommonOptions & { readonly default: DefaultOption<V> }): Leaf<V> {
  return leaf("enum", false, { ...o, values });
}

/** A non-empty string that may be `null` (not set). */
export function optionalText(o: CommonOptions & { readonly default: DefaultOption<string | null> }): Leaf<string | null> {
  return leaf("string", true, o);
}

/** A file or folder path that may be `null` (not set); it must be absolute (see `resolveConfigPaths`). */
export function optionalPath(o: CommonOptions & { readonly default: DefaultOption<string | null> }): Leaf<string | null> {
  return leaf("string", true, { ...o, isPath: true });
}

/** A non-empty list of distinct values from a few strings. */
export function listOf<const V extends string>(values: readonly V[], o: CommonOptions & { readonly default: DefaultOption<readonly V[]> }): Leaf<readonly V[]> {
  return leaf("enum[]", false, { ...o, values });
}

/** A list of non-empty strings that may be `null` (not set). */
export function optionalTextList(o: CommonOptions & { readonly default: DefaultOption<readonly string[] | null> }): Leaf<readonly string[] | null> {
  return leaf("string[]", true, o);
}

/** A group of keys. */
export function section<const F extends Fields>(description: string, fields: F): Section<F> {
  return Object.freeze({ kind: "section" as const, description, fields });
}

/** Whether a default is computed from other keys. */
export function isDerived<T>(d: T | DerivedDefault<T>): d is DerivedDefault<T> {
  return typeof d === "object" && d !== null && !Array.isArray(d) && typeof (d as DerivedDefault<T>).derive === "function";
}

/** One problem found in a config. */
export interface ConfigIssue {
  /** Dotted key path, e.g. `ppo.kl.target` (`config` for the whole document). */
  readonly path: string;
  /** What is wrong, e.g. `must be > 0, got -1`. */
  readonly message: string;
}

/** A short JSON-ish rendering of a bad value for error messages. */
export function show(v: unknown): string {
  if (v === undefined) return "nothing";
  if (typeof v === "number") return Number.isNaN(v) ? "NaN" : String(v);
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object" && v !== null) return "an object";
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/** `>= 1`, `> 0`, `0..1`, `(0, 1]`, ... as the docs and the error messages say it. */
export function limitsText(l: NumericLimits | undefined): string {
  if (!l) return "";
  const lo = l.min !== undefined ? { v: l.min, incl: true } : l.gt !== undefined ? { v: l.gt, incl: false } : undefined;
  const hi = l.max !== undefined ? { v: l.max, incl: true } : l.lt !== undefined ? { v: l.lt, incl: false } : undefined;
  if (lo && hi) {
    if (lo.incl && hi.incl) return `${lo.v}..${hi.v}`;
    return `${lo.incl ? "[" : "("}${lo.v}, ${hi.v}${hi.incl ? "]" : ")"}`;
  }
  if (lo) return `${lo.incl ? ">=" : ">"} ${lo.v}`;
  if (hi) return `${hi.incl ? "<=" : "<"} ${hi.v}`;
  return "";
}

function inLimits(v: number, l: NumericLimits | undefined): boolean {
  if (!l) return true;
  return (l.min === undefined || v >= l.min) && (l.max === undefined || v <= l.max) && (l.gt === undefined || v > l.gt) && (l.lt === undefined || v < l.lt);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Edit distance, for "did you mean" on unknown keys. */
function distance(a: string, b: string): number {
  const d = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = d[0];
    d[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = d[j];
      d[j] = Math.min(d[j] + 1, d[j - 1] + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return d[b.length];
}

function unknownKeyMessage(key: string, known: readonly string[]): string {
  const close = known.filter((k) => distance(key.toLowerCase(), k) <= Math.max(1, Math.floor(k.length / 4)));
  const hint = close.length ? `did you mean ${close.map((k) => `"${k}"`).join(" or ")}? ` : "";
  return `unknown key; ${hint}known: ${known.join(", ")}`;
}

/** Checks one leaf value; returns the error message or undefined. */
export function checkLeaf(f: Leaf<unknown>, v: unknown): string | undefined {
  if (v === null) return f.nullable ? undefined : `must not be null (${typeName(f)})`;
  switch (f.type) {
    case "int":
    case "number": {
      const what = f.type === "int" ? "an integer" : "a finite number";
      const lim = limitsText(f.limits);
      const want = lim ? `${what} ${lim}` : what;
      if (typeof v !== "number" || !Number.isFinite(v) || (f.type === "int" && !Number.isInteger(v))) return `must be ${want}, got ${show(v)}`;
      if (!inLimits(v, f.limits)) {
        // Name only the side that was crossed: "must be > 0, got -1".
        const l = f.limits!;
        const low = (l.min !== undefined && v < l.min) || (l.gt !== undefined && v <= l.gt);
        const side: NumericLimits = low ? { min: l.min, gt: l.gt } : { max: l.max, lt: l.lt };
        return `must be ${limitsText(side)}, got ${show(v)}`;
      }
      return undefined;
    }
    case "boolean":
      return typeof v === "boolean" ? undefined : `must be true or false, got ${show(v)}`;
    case "string":
      if (!(typeof v === "string" && v.length > 0)) return `must be a non-empty string${f.nullable ? " or null" : ""}, got ${show(v)}`;
      // Relative paths would depend on the working directory of whichever process reads them.
      if (f.isPath && !isAbsolute(v)) return `must be an absolute path, got ${show(v)} (rlhf run makes a config file's relative paths absolute, from the file's folder)`;
      return undefined;
    case "enum":
      return typeof v === "string" && f.values!.includes(v) ? undefined : `must be one of ${f.values!.map((x) => JSON.stringify(x)).join(", ")}, got ${show(v)}`;
    case "enum[]":
    case "string[]": {
      const itemOk = (x: unknown): boolean => (f.type === "enum[]" ? typeof x === "string" && f.values!.includes(x) : typeof x === "string" && x.length > 0);
      const itemWant = f.type === "enum[]" ? `values from ${f.values!.map((x) => JSON.stringify(x)).join(", ")}` : "non-empty strings";
      if (!Array.isArray(v)) return `must be a list of ${itemWant}, got ${show(v)}`;
      if (f.type === "enum[]" && v.length === 0) return "must not be empty";
      const bad = v.findIndex((x) => !itemOk(x));
      if (bad >= 0) return `[${bad}] must be one of ${itemWant}, got ${show(v[bad])}`;
      const dup = v.findIndex((x, i) => v.indexOf(x) !== i);
      if (dup >= 0) return `[${dup}] repeats ${show(v[dup])}`;
      return undefined;
    }
  }
}

/** The type column of the docs: `int`, `"a" \| "b"`, `string \| null`, ... */
export function typeName(f: Leaf<unknown>): string {
  let t: string;
  switch (f.type) {
    case "enum":
      t = f.values!.map((v) => JSON.stringify(v)).join(" | ");
      break;
    case "enum[]":
      t = `list of ${f.values!.map((v) => JSON.stringify(v)).join(" | ")}`;
      break;
    case "string[]":
      t = "list of string";
      break;
    default:
      t = f.type;
  }
  return f.nullable ? `${t} | null` : t;
}

/** Every leaf with its dotted path, in schema order. */
export function leaves(node: Section, prefix = ""): { path: string; leaf: Leaf<unknown> }[] {
  const out: { path: string; leaf: Leaf<unknown> }[] = [];
  for (const [key, f] of Object.entries(node.fields)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (f.kind === "leaf") out.push({ path, leaf: f });
    else out.push(...leaves(f, path));
  }
  return out;
}

/** Every section with its dotted path (the root excluded), in schema order. */
export function sections(node: Section, prefix = ""): { path: string; section: Section }[] {
  const out: { path: string; section: Section }[] = [];
  for (const [key, f] of Object.entries(node.fields)) {
    if (f.kind !== "section") continue;
    const path = prefix ? `${prefix}.${key}` : key;
    out.push({ path, section: f }, ...sections(f, path));
  }
  return out;
}

/** Reads a dotted path from nested plain objects. */
export function getPath(obj: unknown, path: string): unknown {
  let cur: unknown = obj;
  for (const k of path.split(".")) {
    if (!isPlainObject(cur) || !Object.prototype.hasOwnProperty.call(cur, k)) return undefined;
    cur = cur[k];
  }
  return cur;
}

function setPath(obj: Record<string, unknown>, path: string, value: unknown): void {
  const keys = path.split(".");
  let cur = obj;
  for (const k of keys.slice(0, -1)) {
    if (!isPlainObject(cur[k])) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[keys[keys.length - 1]] = value;
}

function copyValue(v: unknown): unknown {
  return Array.isArray(v) ? [...v] : v;
}

/**
 * Validates `input` against `schema` and fills in defaults. Returns the resolved plain object
 * (not frozen) and every issue found: unknown keys at any depth, wrong types, out-of-range
 * values. Derived defaults are computed after every static default and user value is in place,
 * in schema order; a derived default whose inputs are invalid stays unset.
 */
export function resolveSchema(schema: Section, input: unknown): { value: Record<string, unknown>; issues: ConfigIssue[]; invalid: Set<string> } {
  const issues: ConfigIssue[] = [];
  const invalid = new Set<string>();
  const out: Record<string, unknown> = {};
  const derived: { path: string; leaf: Leaf<unknown> }[] = [];

  const walk = (sec: Section, raw: unknown, path: string, target: Record<string, unknown>): void => {
    let obj: Record<string, unknown> = {};
    if (raw !== undefined) {
      if (isPlainObject(raw)) obj = raw;
      else {
        issues.push({ path: path || "config", message: `must be a JSON object, got ${show(raw)}` });
        invalid.add(path);
      }
    }
    const known = Object.keys(sec.fields);
    for (const key of Object.keys(obj)) {
      if (!Object.prototype.hasOwnProperty.call(sec.fields, key)) {
        issues.push({ path: path ? `${path}.${key}` : key, message: unknownKeyMessage(key, known) });
      }
    }
    for (const [key, f] of Object.entries(sec.fields)) {
      const p = path ? `${path}.${key}` : key;
      const v = Object.prototype.hasOwnProperty.call(obj, key) ? obj[key] : undefined;
      if (f.kind === "section") {
        const child: Record<string, unknown> = {};
        target[key] = child;
        walk(f, v, p, child);
        continue;
      }
      if (v === undefined) {
        // A derived default gets its slot now so that keys keep schema order.
        if (isDerived(f.default)) {
          derived.push({ path: p, leaf: f });
          target[key] = undefined;
        } else target[key] = copyValue(f.default);
        continue;
      }
      const err = checkLeaf(f, v);
      if (err) {
        issues.push({ path: p, message: err });
        invalid.add(p);
      } else target[key] = copyValue(v);
    }
  };
  walk(schema, input, "", out);

  const isInvalid = (p: string): boolean => [...invalid].some((bad) => bad === "" || bad === p || p.startsWith(`${bad}.`));
  const get: ConfigReader = (p) => (isInvalid(p) ? undefined : getPath(out, p));
  for (const { path, leaf: f } of derived) {
    const d = (f.default as DerivedDefault<unknown>).derive(get);
    if (d === undefined) invalid.add(path);
    else setPath(out, path, copyValue(d));
  }
  return { value: out, issues, invalid };
}

/** Deep-freezes plain objects and arrays in place; returns the argument. */
export function deepFreeze<T>(v: T): T {
  if (typeof v === "object" && v !== null && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v as object)) deepFreeze(x);
  }
  return v;
}
