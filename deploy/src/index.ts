/**
 * @rlhf/deploy: the platform's deployment as code. topology.ts holds the wiring; k8s.ts and
 * compose.ts turn it into the Kubernetes profiles and docker-compose.yaml (generate.ts writes them);
 * check/ reads the written files back and checks them (schemas, wiring, images) for CI.
 */
export * from "./topology";
export { PROFILES, LOCAL, GPU, buildProfile, renderFile, type Profile, type ManifestFile, type K8sObject } from "./k8s";
export { buildCompose, COMPOSE_REPLICAS } from "./compose";
export { generateAll, staleFiles } from "./generate";
export * from "./check";
