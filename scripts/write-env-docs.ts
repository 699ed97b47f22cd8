/**
 * Rewrites the environment-variable tables of docs/services.md from the services' config tables
 * (`pnpm docs:env`); each service's config test keeps the committed tables equal to them.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { withEnvDocs } from "../libs/grpc-kit/src/env-table";
import { COORDINATOR_ENV } from "../services/ppo-coordinator/src/config";
import { POLICY_ENV } from "../services/policy/src/config";
import { PRETRAIN_MIX_ENV } from "../services/pretrain-mix/src/config";
import { REFERENCE_MODEL_ENV } from "../services/reference-model/src/config";
import { REWARD_MODEL_ENV } from "../services/reward-model/src/config";

const target = join(__dirname, "..", "docs", "services.md");
let text = readFileSync(target, "utf8");
for (const [id, table] of [
  ["ppo-coordinator", COORDINATOR_ENV],
  ["reference-model", REFERENCE_MODEL_ENV],
  ["reward-model", REWARD_MODEL_ENV],
  ["policy", POLICY_ENV],
  ["pretrain-mix", PRETRAIN_MIX_ENV],
] as const) {
  text = withEnvDocs(text, id, table);
}
writeFileSync(target, text);
console.log(`wrote ${target}`);
