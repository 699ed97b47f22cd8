/**
 * `resolveRunConfig`: user JSON in, a complete validated deep-frozen RunConfig out, or one
 * error listing every problem.
 */
import { InvalidArgumentError } from "@rlhf/errors";
import { CROSS_FIELD_RULES, RUN_CONFIG_SCHEMA, type RunConfig } from "./run-config";
import { type ConfigIssue, deepFreeze, resolveSchema } from "./schema";

/**
 * A run config that failed validation. It is an InvalidArgumentError (gRPC INVALID_ARGUMENT)
 * whose `field` is the first issue's key path and whose message lists every issue
 * (`ppo.kl.target: must be > 0, got -1; seed: must be an integer >= 0, got 1.5`); `issues` holds
 * them one by one.
 */
export class RunConfigError extends InvalidArgumentError {
  constructor(readonly issues: readonly ConfigIssue[]) {
    super(issues[0].path, [issues[0].message, ...issues.slice(1).map((i) => `${i.path}: ${i.message}`)].join("; "));
  }
}

/** Every problem of a run config, in schema order then rule order; empty when it is valid. */
export function runConfigIssues(json: unknown): ConfigIssue[] {
  return resolveInternal(json).issues;
}

function resolveInternal(json: unknown): { value: Record<string, unknown>; issues: ConfigIssue[] } {
  const { value, issues, invalid } = resolveSchema(RUN_CONFIG_SCHEMA, json);
  const isInvalid = (p: string): boolean => [...invalid].some((bad) => bad === "" || bad === p || p.startsWith(`${bad}.`));
  for (const rule of CROSS_FIELD_RULES) {
    if (rule.reads.some(isInvalid)) continue;
    const message = rule.check(value as unknown as RunConfig);
    if (message !== undefined) issues.push({ path: rule.path, message });
  }
  return { value, issues };
}

/**
 * Validates a run config (parsed JSON) and fills in every default. Unknown keys at any depth,
 * wrong types, values out of range and broken rules between keys are all collected and thrown
 * together as a {@link RunConfigError}. The result is deep-frozen, JSON-serialisable (unset
 * optional keys are `null`), and resolving it again returns an equal config.
 */
export function resolveRunConfig(json: unknown): RunConfig {
  const { value, issues } = resolveInternal(json);
  if (issues.length > 0) throw new RunConfigError(issues);
  return deepFreeze(value) as unknown as RunConfig;
}

/** Parses JSON text and resolves it; a syntax error is an InvalidArgumentError on `config`. */
export function parseRunConfig(text: string): RunConfig {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new RunConfigError([{ path: "config", message: `is not valid JSON: ${(e as Error).message}` }]);
  }
  return resolveRunConfig(json);
}
