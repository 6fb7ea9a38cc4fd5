"""PRM metrics: per-step accuracy and AUROC, ProcessBench-style first-error identification.

- `auroc(scores, labels)`: the Mann-Whitney statistic (ties count one half): the probability
  that a random positive scores above a random negative.
- `step_metrics(probs, labels)`: accuracy of 1[p > 0.5] and AUROC against binary step labels
  (1 = the step and everything before it is right). Against MC labels use 1[MC > 0]; on the
  arithmetic env use the exact checker.
- ProcessBench (Zheng et al. 2024): the predicted first error of a solution is the first step
  scored below a threshold (-1 if none); acc_err = exact match on erroneous solutions, acc_cor
  = rate of -1 on correct ones, F1 = their harmonic mean. `processbench_official` is the
  benchmark's protocol: a fixed threshold (0.5: the PRM's own binary verdict, as the official
  scripts read a step as wrong when the model's "-" outweighs "+"), F1 per subset (gsm8k,
  math, olympiadbench, omnimath) and their unweighted mean. `processbench` is a variant, named
  as such: the threshold chosen on a dev split (best F1) and reported on test.

Pure numpy / scipy: the trainer's dev pass, the pipeline, the CLI `prm_jax.evaluate` and the
dataset report all read these.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from mode_jax.dataeval import stats


auroc = stats.auroc   # defined with the other estimators; kept here for callers


def step_metrics(probs: Sequence[float], labels: Sequence[int], threshold: float = 0.5) -> dict:
  """Step-level accuracy of 1[p > threshold] and AUROC against binary labels."""
  p, y = np.asarray(probs, float), np.asarray(labels, int)
  return {"steps": int(len(p)), "positive_rate": float(y.mean()) if len(y) else float("nan"),
          "accuracy": float(((p > threshold) == (y > 0)).mean()) if len(p) else float("nan"),
          "auroc": auroc(p, y)}


def predict_first_error(step_probs: Sequence[float], threshold: float) -> int:
  """The first step whose probability is below `threshold` (-1: none)."""
  below = np.nonzero(np.asarray(step_probs) < threshold)[0]
  return int(below[0]) if len(below) else -1


def processbench_scores(predicted: Sequence[int], gold: Sequence[int]) -> dict:
  """ProcessBench's accuracies on erroneous / correct samples and their harmonic mean (F1)."""
  p, g = np.asarray(predicted), np.asarray(gold)
  err, cor = g != -1, g == -1
  acc_err = float((p[err] == g[err]).mean()) if err.any() else float("nan")
  acc_cor = float((p[cor] == -1).mean()) if cor.any() else float("nan")
  f1 = (2 * acc_err * acc_cor / (acc_err + acc_cor)) if (acc_err + acc_cor) > 0 else 0.0
  return {"acc_err": acc_err, "acc_cor": acc_cor, "f1": float(f1),
          "erroneous": int(err.sum()), "correct": int(cor.sum())}


def choose_threshold(step_probs: Sequence[Sequence[float]], gold: Sequence[int],
                     grid: Sequence[float] = ()) -> float:
  """The threshold with the best ProcessBench F1 on these (dev) solutions. Candidates: `grid`,
  or 0.02..0.98 plus the 1st..99th percentiles of the dev step scores (a PRM whose scores
  sit in a narrow band still gets a fine grid)."""
  if not len(grid):
    flat = np.concatenate([np.asarray(p, float) for p in step_probs if len(p)] or [[0.5]])
    grid = np.unique(np.concatenate([np.linspace(0.02, 0.98, 49),
                                     np.percentile(flat, np.arange(1, 100))]))
  best, best_f1 = 0.5, -1.0
  for t in grid:
    f1 = processbench_scores([predict_first_error(p, t) for p in step_probs], gold)["f1"]
    if f1 > best_f1:
      best, best_f1 = float(t), f1
  return best


def processbench(dev_probs, dev_gold, test_probs, test_gold) -> dict:
  """ProcessBench scores on the test half at the threshold chosen on the dev half."""
  t = choose_threshold(dev_probs, dev_gold)
  return {"threshold": t, **processbench_scores(
      [predict_first_error(p, t) for p in test_probs], test_gold)}


def processbench_official(subsets, threshold: float = 0.5) -> dict:
  """{subset: (step probabilities per solution, gold first errors)} -> per-subset scores at the
  fixed threshold and "average_f1", the unweighted mean over subsets (ProcessBench's Avg.)."""
  if not subsets:
    raise ValueError("processbench_official: no subsets")
  per = {name: processbench_scores([predict_first_error(p, threshold) for p in probs], gold)
         for name, (probs, gold) in subsets.items()}
  return {"protocol": "official", "threshold": threshold, "subsets": per,
          "average_f1": float(np.mean([v["f1"] for v in per.values()]))}


def first_error_auroc(probs: Sequence, exact: Sequence) -> float:
  """How well scores separate a solution's first wrong step from the right steps before it, at
  equal step position: steps up to and including the first error (later steps are wrong by
  the label's definition and easy to rank once one error is seen), AUROC within each step
  index that has both kinds, averaged weighted by the steps at that index. A score that knows
  only the step's position scores 0.5; the all-steps AUROC does not control for it (labels are
  1 until the first error, so later steps are wrong more often: position alone ranks them)."""
  ps, ys, ks = [], [], []
  for p, y in zip(probs, exact):
    y = list(y)
    last = y.index(0) if 0 in y else len(y) - 1
    ps += list(np.asarray(p)[:last + 1])
    ys += y[:last + 1]
    ks += list(range(last + 1))
  ps, ys, ks = np.asarray(ps, float), np.asarray(ys), np.asarray(ks)
  total, acc = 0, 0.0
  for k in np.unique(ks):
    m = ks == k
    if 0 < ys[m].sum() < m.sum():
      acc += auroc(ps[m], ys[m]) * m.sum()
      total += m.sum()
  return acc / total if total else float("nan")


def position_scores(exact: Sequence) -> list:
  """The baseline that knows only each step's index: later steps score lower."""
  return [-np.arange(len(y), dtype=float) for y in exact]
