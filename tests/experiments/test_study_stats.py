"""Study statistics against closed forms: t-intervals, the paired comparison and sign test,
the routing analysis (Jensen-Shannon task specificity, entropy)."""

import math

import numpy as np
import pytest

from mode_jax.experiments import study_stats


def _runs(per_seed_task):
  return {s: {"scores": {t: {"rougeL": v} for t, v in tasks.items()}}
          for s, tasks in per_seed_task.items()}


def test_interval_is_the_student_t_interval():
  iv = study_stats.interval([1.0, 2.0, 3.0])
  # mean 2, sample sd 1, t_{0.975, 2} = 4.302653
  assert iv["mean"] == 2.0 and iv["half_width"] == pytest.approx(4.302653 / math.sqrt(3),
                                                                 rel=1e-6)
  assert study_stats.interval([5.0])["half_width"] is None
  assert study_stats.fmt(iv) == "2.00 ± 2.48" and study_stats.fmt({"mean": 5.0,
                                                                  "half_width": None}) == "5.00"


def test_paired_difference_and_sign_test():
  a = _runs({0: {"t1": 50, "t2": 40, "t3": 30}, 1: {"t1": 52, "t2": 44, "t3": 20}})
  b = _runs({0: {"t1": 40, "t2": 40, "t3": 35}, 1: {"t1": 42, "t2": 40, "t3": 21},
             2: {"t1": 0, "t2": 0, "t3": 0}})
  p = study_stats.paired(a, b, ["t1", "t2", "t3"], "rougeL")
  assert p["seeds"] == [0, 1]                                    # only the common seeds
  d0, d1 = (10 + 0 - 5) / 3, (10 + 4 - 1) / 3
  assert p["diff"]["mean"] == pytest.approx((d0 + d1) / 2)
  assert p["diff"]["half_width"] == pytest.approx(
      12.706205 * np.std([d0, d1], ddof=1) / math.sqrt(2), rel=1e-6)
  # per-task means: t1 51 vs 41 (win), t2 42 vs 40 (win), t3 25 vs 28 (loss)
  w = p["win_rates"]
  assert (w["wins"], w["losses"], w["ties"]) == (2, 1, 0) and w["p_value"] == pytest.approx(1.0)
  assert (p["pair_wins"], p["pair_losses"], p["pairs"]) == (3, 2, 6)
  assert study_stats.paired(a, _runs({5: {"t1": 1, "t2": 1, "t3": 1}}), ["t1"],
                            "rougeL") == {"seeds": []}


def test_routing_analysis_closed_forms():
  same = np.tile(np.array([0.7, 0.2, 0.1]), (4, 5, 1))           # every task routes alike
  r = study_stats.routing_analysis(same)
  assert r["mean_specificity"] == pytest.approx(0.0, abs=1e-12)
  expected_h = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1))
  assert r["task_entropy"] == pytest.approx([expected_h] * 4)
  assert r["uniform_entropy"] == pytest.approx(math.log(3))
  # block 0 indifferent, block 1: task A -> expert 0, task B -> expert 1 (one-hot)
  usage = np.array([[[0.5, 0.5], [1.0, 0.0]], [[0.5, 0.5], [0.0, 1.0]]])
  r = study_stats.routing_analysis(usage)
  # JS(one-hot, uniform) = 0.5 KL([1,0] || [.75,.25]) + 0.5 KL([.5,.5] || [.75,.25])
  js = 0.5 * math.log(1 / 0.75) + 0.5 * (0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(2))
  assert r["block_specificity"] == pytest.approx([0.0, js], abs=1e-9)
  assert r["most_specific_block"] == 1 and r["max_specificity"] == pytest.approx(js)
  assert r["task_entropy"] == pytest.approx([0.5 * math.log(2)] * 2, abs=1e-9)


def test_names():
  assert study_stats.slug("MoDE 16x2x1") == "MoDE_16x2x1"
  assert study_stats.slug("LoRA 2 per task") == "LoRA_2_per_task"
  assert study_stats.short_task("words_date_iso") == "date_iso"
  assert study_stats.short_task("sni_task363_sst2") == "task363_sst2"


def test_train_loss_summary_pairs_over_seeds_and_dedupes_resumed_steps(tmp_path):
  p = tmp_path / "metrics.jsonl"
  p.write_text('{"step": 5, "loss": 2.0}\n{"step": 10, "loss": 9.0}\n{"step": 10, "eval_loss": 1}'
               '\n{"step": 10, "loss": 1.0}\n')           # step 10 logged again after a resume
  assert study_stats.read_train_curve(str(p)) == [(5, 2.0), (10, 1.0)]
  assert study_stats.read_train_curve(str(tmp_path / "absent.jsonl")) is None
  c = lambda a, b: {"train_curve": [(5, a), (10, b)]}
  runs = {"A": {0: c(2.0, 1.0), 1: c(3.0, 2.0)}, "B": {0: c(1.0, 1.0), 1: c(1.0, 0.0)},
          "C": {0: {"train_curve": None}}}
  out = study_stats.train_loss_summary(runs, reference="B")
  assert set(out) == {"A", "B"}
  assert out["A"]["mean_loss"]["mean"] == 2.0 and out["A"]["late_loss"]["mean"] == 1.5
  assert out["A"]["mean_curve"] == [2.5, 1.5] and out["A"]["late_from_step"] == 10
  vs = out["A"]["vs_reference"]["mean_loss"]    # per seed 1.5 - 1.0 and 2.5 - 0.5: 0.5, 2.0
  assert vs["mean"] == 1.25 and abs(vs["half_width"] - 12.706 * 0.75) < 1e-2
  assert out["A"]["vs_reference"]["late_loss"]["mean"] == 1.0     # (1 - 1 + 2 - 0) / 2
  assert "vs_reference" not in out["B"]
