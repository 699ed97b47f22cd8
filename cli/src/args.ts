/** Minimal flag parsing: `--name value`, `--name=value`, `--flag`; positional arguments kept in order. */
export interface ParsedArgs {
  positional: string[];
  flags: Map<string, string | true>;
  /**
   * Flags that need a value but were given none (kept as `true` in `flags`). Reported by
   * {@link allowFlags} after unknown flags, so that `rlhf demo --bogus` says "unknown option".
   */
  missingValue?: Set<string>;
}

export class UsageError extends Error {}

export function parseArgs(argv: string[], booleanFlags: ReadonlySet<string> = new Set()): ParsedArgs {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  const missingValue = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith("--")) {
      const eq = a.indexOf("=");
      const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
      if (eq > 0) flags.set(name, a.slice(eq + 1));
      else if (booleanFlags.has(name)) flags.set(name, true);
      else {
        const v = argv[i + 1];
        if (v === undefined || v.startsWith("--")) {
          flags.set(name, true);
          missingValue.add(name);
          continue;
        }
        flags.set(name, v);
        i++;
      }
    } else positional.push(a);
  }
  return { positional, flags, missingValue };
}

/** Rejects flags that a command does not know, then known ones that lack their value. */
export function allowFlags(args: ParsedArgs, allowed: readonly string[], command: string): void {
  for (const k of args.flags.keys()) {
    if (!allowed.includes(k)) throw new UsageError(`${command}: unknown option --${k} (known: ${allowed.map((a) => "--" + a).join(", ") || "none"})`);
  }
  for (const k of args.missingValue ?? []) throw new UsageError(`--${k} needs a value`);
}

/** A flag's value; undefined when absent. UsageError when it was given without its value. */
export function flagString(args: ParsedArgs, name: string): string | undefined {
  const v = args.flags.get(name);
  if (v === true && args.missingValue?.has(name)) throw new UsageError(`--${name} needs a value`);
  return v === true ? undefined : v;
}
