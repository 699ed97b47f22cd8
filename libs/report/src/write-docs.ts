/** Writes REPORT.md beside package.json: `pnpm --filter @rlhf/report run docs`. */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { reportFieldsDocument } from "./fields";

const target = join(__dirname, "..", "REPORT.md");
writeFileSync(target, reportFieldsDocument());
console.log(`wrote ${target}`);
