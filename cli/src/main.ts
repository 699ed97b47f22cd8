#!/usr/bin/env node
/**
 * The `rlhf` command (run from the repository root as `pnpm rlhf ...`, or as `rlhf` anywhere
 * after `pnpm link --global` in cli/: package.json's bin). Nothing that loads gRPC
 * is imported at the top: `rlhf serve` must let the service start tracing before gRPC loads, so
 * each command is required only when it runs.
 */
import { parseArgs, UsageError } from "./args";

const USAGE = `usage: rlhf <command> [options]
commands:
  serve <service>   run one service in this process (see rlhf serve --help)
  demo              the main job: the whole recipe on built-in data, five services as child processes
  run <config>      the same with your run config (JSON or YAML)
  resume <run-dir>  continue a failed or cancelled run from its last checkpoint (a run folder or run id)
  data export|check write the built-in datasets / check a data file (see rlhf data --help)
  label serve|import|export|simulate  the labeling service: people rank K responses in a web UI (see rlhf label --help)
  generate          sample from a checkpoint (see rlhf generate --help)
  logprobs          per-token log-probabilities of a text or token list
  init              write a seeded random checkpoint (tiny, small, gpt2-124m)
  watch <run-id>    follow a run live (NATS or its run folder), or replay a finished one (a run id or folder)
  help              this text`;

async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv, new Set(["help", "tiny", "no-cache", "json", "insecure", "tls", "no-seed", "first", "meta"]));
  const cmd = args.positional[0];
  if (!cmd || cmd === "help" || (args.flags.has("help") && !cmd)) {
    console.log(USAGE);
    return;
  }
  switch (cmd) {
    case "serve": {
      /* eslint-disable @typescript-eslint/no-require-imports */
      const { serve, SERVE_USAGE } = require("./commands/serve") as typeof import("./commands/serve");
      if (args.flags.has("help")) return void console.log(SERVE_USAGE);
      return serve(args);
    }
    case "demo":
    case "run":
    case "resume": {
      const r = require("./commands/run") as typeof import("./commands/run");
      if (args.flags.has("help")) return void console.log(cmd === "demo" ? r.DEMO_USAGE : cmd === "run" ? r.RUN_USAGE : r.RESUME_USAGE);
      return cmd === "demo" ? r.demo(args) : cmd === "run" ? r.run(args) : r.resume(args);
    }
    case "data": {
      const { data, DATA_USAGE } = require("./commands/data") as typeof import("./commands/data");
      if (args.flags.has("help")) return void console.log(DATA_USAGE);
      return data(args);
    }
    case "label": {
      const l = require("./commands/label") as typeof import("./commands/label");
      if (args.flags.has("help")) return void console.log(l.LABEL_USAGE);
      return l.label(args);
    }
    case "watch": {
      const w = require("./commands/watch") as typeof import("./commands/watch");
      if (args.flags.has("help")) return void console.log(w.WATCH_USAGE);
      return w.watch(args);
    }
    case "generate":
    case "logprobs":
    case "init": {
      const m = require("./commands/model") as typeof import("./commands/model");
      /* eslint-enable @typescript-eslint/no-require-imports */
      if (args.flags.has("help")) return void console.log(m.MODEL_USAGE);
      return cmd === "generate" ? m.generate(args) : cmd === "logprobs" ? m.logprobs(args) : m.init(args);
    }
    default:
      throw new UsageError(`unknown command "${cmd}"\n${USAGE}`);
  }
}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError) {
    process.stderr.write(`rlhf: ${err.message}\n`);
    process.exit(2);
  }
  const e = err as Error;
  process.stderr.write(`rlhf: ${e.message}\n`);
  process.exit(1);
});
