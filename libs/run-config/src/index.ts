/**
 * `@rlhf/run-config`: the typed, validated run config of the whole recipe. One table
 * (`RUN_CONFIG_SCHEMA`) gives validation, defaults, the `RunConfig` type and CONFIG.md. No gRPC.
 */
export {
  type RunConfig,
  type CrossFieldRule,
  type ModelShape,
  type ModelPresetName,
  type TokenizerName,
  RUN_CONFIG_SCHEMA,
  CROSS_FIELD_RULES,
  MODEL_PRESETS,
  MODEL_PRESET_NAMES,
  TOKENIZER_NAMES,
  TOKENIZER_VOCAB_SIZE,
  TASK_FAMILY_NAMES,
  modelShape,
  rewardModelValidationPrompts,
} from "./run-config";
export { RunConfigError, resolveRunConfig, parseRunConfig, runConfigIssues } from "./resolve";
export { type RunPresetName, type JsonObject, RUN_PRESET_NAMES, presetRunConfig, mergeRunConfigs } from "./presets";
export { runConfigMarkdown, runConfigDocument } from "./docs";
export { PATH_KEYS, resolveConfigPaths } from "./paths";
export { MAX_CONFIG_DEPTH, nestedDeeperThan } from "./nesting";
export { type ConfigIssue, type Leaf, type Section, type ValueOf } from "./schema";
