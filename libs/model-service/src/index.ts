/**
 * The kit of the model services (policy, reward-model, reference-model, pretrain-mix): their
 * shared config-table entries, start-up and shutdown around a model slot, the load-weights
 * dispatch and the client that pulls the policy's weights.
 */
export * from "./env";
