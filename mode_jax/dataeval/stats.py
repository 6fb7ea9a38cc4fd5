"""Confidence intervals shared by every dataset metric, and the Gini coefficient.

Three resampling schemes, each with a fixed seed (same data + seed -> same interval):

- `bootstrap(stat, n, groups=...)`: the percentile bootstrap (Efron). Items are resampled with
  replacement; with `groups` (e.g. the question each record belongs to) whole groups are
  resampled (the cluster bootstrap), because records of one question are correlated.
  For statistics that are means, rates or AUCs of per-item values.
- `half_sampling(stat, n)`: for set-level statistics that a duplicate changes by itself
  (distinct-n, self-BLEU, Vendi, pairwise distances, MAUVE, Frechet): resampling with
  replacement would add exact duplicates and bias them, so the interval comes from random
  halves drawn without replacement. With d = n/2 left out, the delete-d jackknife variance
  (Shao & Wu 1989) is ((n - d) / d) * Var(stat on the subsamples) = Var(stat on halves), so the
  interval is stat(all) +- 1.96 * sd(stat on halves).
- two-sample versions of both (`two_sample=True`): generated and reference are resampled
  independently.

An `Estimate` is {"value", "lo", "hi", "n"} (a 95% interval unless `level` says otherwise).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np
from scipy.stats import norm, rankdata

Estimate = dict
Z95 = 1.959963984540054


def estimate(value: float, lo: float, hi: float, n: int) -> Estimate:
  """The result type of every interval: {"value", "lo", "hi", "n"}."""
  return {"value": float(value), "lo": float(lo), "hi": float(hi), "n": int(n)}


def _normal(value: float, reps, n: int, z: float = Z95) -> Estimate:
  """value +- z * sd of the finite replicates."""
  reps = [r for r in reps if np.isfinite(r)]
  sd = float(np.std(reps, ddof=1)) if len(reps) > 1 else float("nan")
  return estimate(value, value - z * sd, value + z * sd, n)


def _groups_index(n: int, groups: Optional[Sequence]) -> list[np.ndarray]:
  if groups is None:
    return [np.array([i]) for i in range(n)]
  if len(groups) != n:
    raise ValueError(f"groups has {len(groups)} entries for {n} items")
  by: dict = {}
  for i, g in enumerate(groups):
    by.setdefault(g, []).append(i)
  return [np.asarray(v) for v in by.values()]


def bootstrap(stat: Callable[[np.ndarray], float], n: int, *, groups: Optional[Sequence] = None,
              n_boot: int = 200, seed: int = 0, level: float = 0.95,
              normal: bool = False) -> Estimate:
  """stat(indices) on all n items, with a percentile interval from `n_boot` resamples of the
  items (or of whole groups); `normal=True`: stat +- z sd(resamples) instead, for statistics
  whose resampling distribution is shifted away from the estimate (the Gini of exactly uniform
  counts is 0, of any resample > 0). Resamples where stat is not finite are dropped."""
  if n == 0:
    return estimate(float("nan"), float("nan"), float("nan"), 0)
  value = stat(np.arange(n))
  units = _groups_index(n, groups)
  rng = np.random.default_rng(seed)
  reps = []
  for _ in range(n_boot):
    pick = rng.integers(0, len(units), len(units))
    v = stat(np.concatenate([units[j] for j in pick]))
    if np.isfinite(v):
      reps.append(v)
  if not reps:
    return estimate(value, float("nan"), float("nan"), n)
  a = (1 - level) / 2
  if normal:
    return _normal(value, reps, n, float(norm.ppf(1 - a)))
  return estimate(value, np.quantile(reps, a), np.quantile(reps, 1 - a), n)


def half_sampling(stat: Callable[[np.ndarray], float], n: int, *, n_boot: int = 50,
                  seed: int = 0) -> Estimate:
  """stat(indices) on all n items +- 1.96 sd of stat on random halves (see module doc)."""
  if n == 0:
    return estimate(float("nan"), float("nan"), float("nan"), 0)
  value = stat(np.arange(n))
  if n < 4:
    return estimate(value, float("nan"), float("nan"), n)
  rng = np.random.default_rng(seed)
  reps = [stat(np.sort(rng.choice(n, n // 2, replace=False))) for _ in range(n_boot)]
  return _normal(value, reps, n)


def half_sampling2(stat: Callable[[np.ndarray, np.ndarray], float], n_a: int, n_b: int, *,
                   n_boot: int = 20, seed: int = 0) -> Estimate:
  """Two-sample `half_sampling`: halves of both sets, drawn independently."""
  value = stat(np.arange(n_a), np.arange(n_b))
  if min(n_a, n_b) < 4:
    return estimate(value, float("nan"), float("nan"), n_a + n_b)
  rng = np.random.default_rng(seed)
  reps = [stat(np.sort(rng.choice(n_a, n_a // 2, replace=False)),
               np.sort(rng.choice(n_b, n_b // 2, replace=False))) for _ in range(n_boot)]
  return _normal(value, reps, n_a + n_b)


def gini(counts: Sequence[float]) -> float:
  """Gini coefficient of non-negative counts (how often each item recurs): 0 when every item
  occurs equally often, -> 1 when one item takes all occurrences. G = sum_i sum_j |x_i - x_j|
  / (2 n^2 mean), computed from the sorted values as (2 sum_i i x_(i)) / (n sum x) - (n+1)/n."""
  x = np.sort(np.asarray(counts, np.float64))
  if x.size == 0 or x.sum() == 0:
    return float("nan")
  if (x < 0).any():
    raise ValueError("gini: counts must be non-negative")
  n = x.size
  return float(2.0 * np.sum(np.arange(1, n + 1) * x) / (n * x.sum()) - (n + 1) / n)


def gini_of_occurrences(items: Sequence, *, n_boot: int = 200, seed: int = 0) -> Estimate:
  """Gini of how often each distinct item recurs in `items` (one entry per occurrence), with
  a normal bootstrap interval over occurrences, clipped to [0, 1]."""
  keys = {}
  codes = np.array([keys.setdefault(x, len(keys)) for x in items], np.int64)

  def stat(idx):
    return gini(np.bincount(codes[idx], minlength=len(keys))[np.unique(codes[idx])])
  e = bootstrap(stat, len(codes), n_boot=n_boot, seed=seed, normal=True)
  return estimate(e["value"], max(0.0, e["lo"]), min(1.0, e["hi"]), e["n"])


def fmt(e: Optional[Estimate], digits: int = 3) -> str:
  """"0.512 [0.498, 0.530]" (or "n/a")."""
  if not e or e.get("value") is None or not np.isfinite(e["value"]):
    return "n/a"
  v = f"{e['value']:.{digits}f}"
  if np.isfinite(e.get("lo", np.nan)) and np.isfinite(e.get("hi", np.nan)):
    return f"{v} [{e['lo']:.{digits}f}, {e['hi']:.{digits}f}]"
  return v


def auroc(scores: Sequence[float], labels: Sequence[int]) -> float:
  """Area under the ROC curve of `scores` for binary `labels` (average ranks for ties; nan
  without both classes)."""
  s, y = np.asarray(scores, float), np.asarray(labels, bool)
  n_pos, n_neg = int(y.sum()), int((~y).sum())
  if n_pos == 0 or n_neg == 0:
    return float("nan")
  ranks = rankdata(s)                       # average ranks for ties
  return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
