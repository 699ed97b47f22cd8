/**
 * How the user started the CLI, so that the commands it prints (`resume it with: ...`) work when
 * pasted: `rlhf` through the installed bin (`pnpm link --global` or `npm link` in cli/), else
 * `pnpm rlhf` (the repository's script, also the way to reach a CLI that is not linked).
 */
import { basename } from "node:path";

/** "rlhf" or "pnpm rlhf" (see the module comment); `env` and `script` default to this process's. */
export function cliCommand(env: Readonly<Record<string, string | undefined>> = process.env, script: string = process.argv[1] ?? ""): string {
  if (env.npm_lifecycle_event === "rlhf") return "pnpm rlhf";
  // npm link: node keeps the name of the `rlhf` symlink it was started through. pnpm's global
  // shim runs node on main.js itself, with NODE_PATH set to pnpm's global store; the shell that
  // ran the shim may name it in `_`.
  const pnpmShim = /[\\/]global[\\/]\d+[\\/]\.pnpm[\\/]node_modules/.test(env.NODE_PATH ?? "");
  const viaBin = basename(script) === "rlhf" || basename(env._ ?? "") === "rlhf" || pnpmShim;
  return viaBin ? "rlhf" : "pnpm rlhf";
}
