import { test } from "node:test";
import { checkEnvDocs } from "@rlhf/grpc-kit";
import { REFERENCE_MODEL_ENV } from "./config";

test("docs/services.md lists the variables of the config table (run `pnpm docs:env` after changing it)", () => {
  checkEnvDocs(__dirname, "reference-model", REFERENCE_MODEL_ENV);
});
