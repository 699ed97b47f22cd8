// Library face of the service, for tests and embedding; the process entry point is main.ts.
export { startRewardModel, type RewardModelApp } from "./app";
export { loadConfig, type RewardModelConfig } from "./config";
export { rankingPairs, rankingLoss, groupedScores, type RankedGroup, type Scorer } from "./ranking";
