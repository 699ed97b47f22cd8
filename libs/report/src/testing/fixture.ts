/** A fabricated ReportData with every section, for tests. */
import { winRate } from "../acceptance";
import { type IterationMetrics, type ReportData } from "../types";

function iterations(n: number, ptx: boolean): IterationMetrics[] {
  return Array.from({ length: n }, (_, i) => {
    const values: Record<string, number> = {
      "objective/reward": 0.1 * (i + 1) + (ptx ? 0.01 : 0),
      "objective/score": 0.12 * (i + 1) + (ptx ? 0.01 : 0),
      "objective/missing_eos_fraction": 0.3 / (i + 1),
      "gold/score": 0.05 * (i + 1) - 0.01 * i * i + (ptx ? 0.02 : 0),
      "objective/kl": 0.5 * (i + 1) + (ptx ? 0.25 : 0),
      "objective/beta": 0.02,
      "loss/policy": -0.01 * (i + 1),
      "loss/value": 1 / (i + 1),
      "policy/clip_fraction": 0.05,
      "policy/approx_kl": 0.001 * (i + 1),
      "timing/generate_ms": 1200 + i,
    };
    if (ptx) values["ptx/loss"] = 3.25 - 0.01 * i;
    return { iteration: i + 1, values };
  });
}

/**
 * Every section present; acceptance passes (gold ties 0.12, labelers 0.74, RM 0.72 learned,
 * PPO-ptx 0.675 [0.61, 0.74] with helpfulness and exact match above SFT's, plain PPO's loss above
 * SFT's and PPO-ptx's closer, KL 2.75 < 10).
 */
export function fullReportData(): ReportData {
  const model = (win: ReturnType<typeof winRate> | null, loss: number, helpful = 0.5, exact = 0.3) => ({
    win_rate_vs_sft: win,
    gold_helpfulness: helpful,
    exact_match: exact,
    hallucination_rate: 0.1,
    blocklist_rate: 0.02,
    pretrain_validation_loss: loss,
    mean_response_tokens: 21.5,
    eos_rate: 0.9,
  });
  return {
    run: {
      id: "demo-1",
      created: "2025-01-02T03:04:05.000Z",
      finished: "2025-01-02T03:20:00.000Z",
      config: { seed: 0, ppo: { kl: { max_mean_kl: 10 } } },
      elapsed_ms: { pretrain: 160000, sft: 190000, rankings: 40000, reward_model: 170000, ppo: 300000, evaluation: 40000 },
      backend: "wasm",
      compute: "wasm, SIMD, 1 thread",
      pretrain_from_cache: false,
    },
    models: {
      base: model(winRate(40, 0, 200), 3.1, 0.1, 0),
      sft: {
        ...model(null, 3.3),
        by_family: {
          count_words: { prompts: 100, win_rate_vs_sft: null, same_as_sft: null, gold_helpfulness: 0.6, exact_match: 0.25, hallucination_rate: 0.2 },
          last_word: { prompts: 100, win_rate_vs_sft: null, same_as_sft: null, gold_helpfulness: 0.2, exact_match: 0.15, hallucination_rate: 0.7 },
        },
      },
      ppo: model(winRate(120, 10, 200), 3.6, 0.55, 0.35),
      ppo_ptx: {
        ...model(winRate(130, 10, 200), 3.4, 0.6, 0.4),
        by_family: {
          count_words: { prompts: 100, win_rate_vs_sft: 0.7, same_as_sft: 0.35, gold_helpfulness: 0.8, exact_match: 0.375, hallucination_rate: 0 },
          last_word: { prompts: 100, win_rate_vs_sft: 0.65, same_as_sft: 0.1, gold_helpfulness: 0.4, exact_match: 0.425, hallucination_rate: 0.5 },
        },
      },
    },
    reward_model: { heldout_accuracy: 0.72, labeler_agreement: 0.74, gold_tie_share: 0.12, train_loss: 0.51, pairs: { train: 2592, heldout: 288 } },
    curves: {
      pretrain: [
        [16, 6.1],
        [32, 5.2],
        [48, 4.8],
      ],
      sft: [
        [10, 2.5],
        [20, 1.1],
      ],
      reward_model: [
        [1, 0.69],
        [2, 0.6],
        [3, 0.52],
      ],
    },
    kl: { max_mean_kl: 10 },
    iterations: { ppo: iterations(5, false), ppo_ptx: iterations(5, true) },
    samples: [
      { prompt: "List the nouns: The cat sat.\nAnswer:", gold: " cat", responses: { base: " the the", sft: " cat", ppo: " cat", ppo_ptx: " cat" } },
      { prompt: "Count the words: A b c.\nAnswer:", gold: " 3", responses: { sft: " 3", ppo_ptx: "<script>alert(1)</script> & \"quoted\"" } },
    ],
    timeline: [
      { name: "ppo.iteration", service: "ppo-coordinator", startMs: 0, durationMs: 5000, depth: 0, attributes: { "rlhf.iteration": 5, "rlhf.variant": "ppo_ptx", "rlhf.batch_size": 8 } },
      { name: "ppo.generate", service: "ppo-coordinator", startMs: 0, durationMs: 1200, depth: 1 },
      { name: "grpc.rlhf.policy.v1.PolicyService/Generate", service: "policy", startMs: 5, durationMs: 1190, depth: 2, attributes: { "rlhf.sequences": 8 } },
      { name: "ppo.update", service: "ppo-coordinator", startMs: 2000, durationMs: 1500, depth: 1 },
      { name: "ppo.update", service: "ppo-coordinator", startMs: 3500, durationMs: 1500, depth: 1 },
    ],
  };
}

/** Only the run: every optional section absent. */
export function minimalReportData(): ReportData {
  const d = fullReportData();
  return { run: d.run, models: {} };
}

const NO_GOLD = "the held-out prompts come from a file and have no gold answers";

/** A run on users' data: no gold answers and no simulated labelers, so those metrics are null with a reason. */
export function noGoldReportData(): ReportData {
  const d = fullReportData();
  const strip = (m: NonNullable<ReportData["models"]["sft"]>) => ({ ...m, win_rate_vs_sft: null, gold_helpfulness: null, exact_match: null, hallucination_rate: null, blocklist_rate: null });
  return {
    ...d,
    not_applicable: {
      win_rate_vs_sft: `${NO_GOLD}: the simulated labelers judge against them`,
      gold_helpfulness: NO_GOLD,
      hallucination_rate: `${NO_GOLD} (nor source sentences)`,
      blocklist_rate: `${NO_GOLD}: the blocklist check is part of the simulated labelers`,
      labeler_agreement: "the rankings come from a file: no simulated labelers ranked them",
    },
    models: Object.fromEntries(Object.entries(d.models).map(([k, m]) => [k, strip(m!)])),
    reward_model: { ...d.reward_model!, labeler_agreement: null, gold_tie_share: null },
    samples: d.samples!.map((s) => ({ ...s, gold: null })),
  };
}
