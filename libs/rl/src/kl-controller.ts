/**
 * KL coefficient controllers: the beta of the per-token reward -beta * k1_t.
 *
 * Units: `observedKl` is the batch mean of the per-sequence KL sum, sum_t k1_t, in nats per
 * sequence (`KlPenalizedRewardsStats.meanSequenceKl`), which is what Ziegler et al.'s controller
 * (lm-human-preferences) and TRL use; `targetKl` is in the same unit. `nSteps` is the number of
 * sequences (episodes) in the batch the KL was measured on.
 */
import { InvalidArgumentError, check } from "@rlhf/errors";
import { checkFinite, checkInteger } from "./validate";

/** JSON-safe state of a controller, saved with checkpoints; see {@link klControllerFromState}. */
export type KlControllerState =
  | { readonly kind: "fixed"; readonly beta: number }
  | { readonly kind: "adaptive"; readonly beta: number; readonly targetKl: number; readonly horizon: number };

/** A source of the KL coefficient beta, updated once per rollout batch. */
export interface KlController {
  /** Current KL coefficient (reward per nat of k1), >= 0. */
  readonly beta: number;
  /**
   * Feeds one batch's KL back. `observedKl`: batch mean of the per-sequence k1 sum, nats per
   * sequence; `nSteps`: sequences in that batch (an integer >= 0).
   */
  update(observedKl: number, nSteps: number): void;
  /** The whole state as a plain JSON-safe object; restoring it continues exactly. */
  state(): KlControllerState;
}

/** Configuration of a controller, as in a run config; see {@link createKlController}. */
export type KlControllerConfig =
  | { readonly kind: "fixed"; readonly beta: number }
  | { readonly kind: "adaptive"; readonly initBeta: number; readonly targetKl: number; readonly horizon: number };

function checkUpdate(observedKl: number, nSteps: number): void {
  checkFinite(observedKl, "observedKl");
  checkInteger(nSteps, 0, "nSteps");
}

function checkBeta(beta: number, field: string, positive: boolean): void {
  checkFinite(beta, field);
  check(positive ? beta > 0 : beta >= 0, field, `must be ${positive ? ">" : ">="} 0, got ${beta}`);
}

/** A constant beta; `update` only validates its arguments. InstructGPT: beta = 0.02. */
export class FixedKlController implements KlController {
  readonly beta: number;

  /** @param beta KL coefficient >= 0. */
  constructor(beta: number) {
    checkBeta(beta, "beta", false);
    this.beta = beta;
  }

  /** No effect on beta; throws on a non-finite `observedKl` or a bad `nSteps` like the adaptive one. */
  update(observedKl: number, nSteps: number): void {
    checkUpdate(observedKl, nSteps);
  }

  state(): KlControllerState {
    return { kind: "fixed", beta: this.beta };
  }

  /** Rebuilds a controller from {@link FixedKlController.state}'s output (or its JSON parse). */
  static fromState(state: unknown): FixedKlController {
    const s = stateObject(state);
    check(s.kind === "fixed", "state.kind", `must be "fixed", got ${JSON.stringify(s.kind)}`);
    const beta = numberField(s, "beta");
    check(beta >= 0, "state.beta", `must be >= 0, got ${beta}`);
    return new FixedKlController(beta);
  }
}

/** Options of {@link AdaptiveKlController}. lm-human-preferences: 0.15, 6, 10000; TRL: 0.2, 6, 10000. */
export interface AdaptiveKlOptions {
  /** Starting beta, > 0. */
  readonly initBeta: number;
  /** Target KL, nats per sequence (the batch mean of the per-sequence k1 sum), > 0. */
  readonly targetKl: number;
  /** Horizon, in sequences (episodes), > 0: how fast beta moves. */
  readonly horizon: number;
}

/**
 * Ziegler et al. 2019's adaptive controller (lm-human-preferences `AdaptiveKLController`):
 *
 *   e    = clip(observedKl / targetKl - 1, -0.2, 0.2)
 *   beta = beta * (1 + e * nSteps / horizon)
 *
 * One update moves beta by at most a factor 1 +- 0.2 * nSteps / horizon; `update` rejects
 * nSteps >= 5 * horizon, where the factor could reach 0 or below.
 */
export class AdaptiveKlController implements KlController {
  private currentBeta: number;
  readonly targetKl: number;
  readonly horizon: number;

  constructor(options: AdaptiveKlOptions) {
    checkBeta(options.initBeta, "initBeta", true);
    checkFinite(options.targetKl, "targetKl");
    check(options.targetKl > 0, "targetKl", `must be > 0, got ${options.targetKl}`);
    checkFinite(options.horizon, "horizon");
    check(options.horizon > 0, "horizon", `must be > 0, got ${options.horizon}`);
    this.currentBeta = options.initBeta;
    this.targetKl = options.targetKl;
    this.horizon = options.horizon;
  }

  get beta(): number {
    return this.currentBeta;
  }

  update(observedKl: number, nSteps: number): void {
    checkUpdate(observedKl, nSteps);
    check(nSteps < 5 * this.horizon, "nSteps", `must be < 5 * horizon (${5 * this.horizon}) so beta stays > 0, got ${nSteps}`);
    const error = Math.min(Math.max(observedKl / this.targetKl - 1, -0.2), 0.2);
    this.currentBeta *= 1 + (error * nSteps) / this.horizon;
  }

  state(): KlControllerState {
    return { kind: "adaptive", beta: this.currentBeta, targetKl: this.targetKl, horizon: this.horizon };
  }

  /** Rebuilds a controller from {@link AdaptiveKlController.state}'s output (or its JSON parse). */
  static fromState(state: unknown): AdaptiveKlController {
    const s = stateObject(state);
    check(s.kind === "adaptive", "state.kind", `must be "adaptive", got ${JSON.stringify(s.kind)}`);
    const [beta, targetKl, horizon] = (["beta", "targetKl", "horizon"] as const).map((name) => {
      const v = numberField(s, name);
      check(v > 0, `state.${name}`, `must be > 0, got ${v}`);
      return v;
    });
    return new AdaptiveKlController({ initBeta: beta, targetKl, horizon });
  }
}

function stateObject(state: unknown): Record<string, unknown> {
  if (typeof state !== "object" || state === null || Array.isArray(state)) {
    throw new InvalidArgumentError("state", "must be an object");
  }
  return state as Record<string, unknown>;
}

function numberField(s: Record<string, unknown>, name: string): number {
  const v = s[name];
  check(typeof v === "number" && Number.isFinite(v), `state.${name}`, `must be a finite number, got ${JSON.stringify(v)}`);
  return v;
}

/**
 * Rebuilds the controller a checkpoint saved with `state()`, by its `kind`. Numbers round-trip
 * exactly through JSON, so a restored controller continues bit-for-bit. Unknown kinds or bad
 * fields throw InvalidArgumentError naming `state.<field>`.
 */
export function klControllerFromState(state: unknown): KlController {
  const s = stateObject(state);
  if (s.kind === "fixed") return FixedKlController.fromState(s);
  if (s.kind === "adaptive") return AdaptiveKlController.fromState(s);
  throw new InvalidArgumentError("state.kind", `must be "fixed" or "adaptive", got ${JSON.stringify(s.kind)}`);
}

/** Builds a controller from its run-config entry. */
export function createKlController(config: KlControllerConfig): KlController {
  if (config.kind === "fixed") return new FixedKlController(config.beta);
  if (config.kind === "adaptive") return new AdaptiveKlController(config);
  throw new InvalidArgumentError("kind", `must be "fixed" or "adaptive", got ${JSON.stringify((config as { kind: unknown }).kind)}`);
}
