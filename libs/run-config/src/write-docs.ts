/** Writes CONFIG.md beside package.json: `pnpm --filter @rlhf/run-config run docs`. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { runConfigDocument } from "./docs";

const target = join(__dirname, "..", "CONFIG.md");
writeFileSync(target, runConfigDocument());
console.log(`wrote ${target}`);
