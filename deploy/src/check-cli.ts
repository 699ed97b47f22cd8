/**
 * `pnpm --filter @rlhf/deploy check`: every check of deploy/ (see ./check/index.ts) on the files as
 * they are; prints one line per problem and exits 1 when there is any.
 */
import { checkAll, fmt } from "./check";
import { DEPLOY_DIR } from "./observability";

const problems = checkAll(DEPLOY_DIR);
for (const p of problems) console.log(fmt(p));
console.log(problems.length ? `${problems.length} problem(s)` : "deploy/: every profile, docker-compose.yaml and the images check out");
process.exitCode = problems.length ? 1 : 0;
