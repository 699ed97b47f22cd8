import { test } from "node:test";
import { checkEnvDocs } from "@rlhf/grpc-kit";
import { POLICY_ENV } from "./config";

test("docs/services.md lists the variables of the config table (run `pnpm docs:env` after changing it)", () => {
  checkEnvDocs(__dirname, "policy", POLICY_ENV);
});
