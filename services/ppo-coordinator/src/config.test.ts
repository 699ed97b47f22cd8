import { test } from "node:test";
import { checkEnvDocs } from "@rlhf/grpc-kit";
import { COORDINATOR_ENV } from "./config";

test("docs/services.md lists the variables of the config table (run `pnpm docs:env` after changing it)", () => {
  checkEnvDocs(__dirname, "ppo-coordinator", COORDINATOR_ENV);
});
