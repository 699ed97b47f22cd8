/**
 * The kit of the model services (policy, reward-model, reference-model, pretrain-mix): their
 * shared config-table entries, start-up and shutdown, the model slot, the load-weights dispatch,
 * the client that pulls the policy's weights and the cache of models by weights version.
 */
export * from "./env";
export * from "./app";
export * from "./slot";
export * from "./load-weights";
export * from "./policy-weights";
export { WeightsCache, type Lease, type Loaded, type Loader } from "./weights-cache";
export { siblingModule, type ComputeContext, type CreateCompute, type Serving } from "./worker/host";
