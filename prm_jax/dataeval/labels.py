"""Quality of process-supervision labels (OmegaPRM / Math-Shepherd records, `omegaprm.tree`).

A record labels one solution prefix (its `steps`) with MC, the fraction of the policy's
rollouts from that prefix that reached the right answer (graded complete solutions: 1 or 0);
the hard label is 1[MC > threshold] (threshold 0 as in the paper). Intervals are cluster
bootstraps over questions (records of one question share prefixes and rollouts).

- MC distribution: histogram, shares of MC = 0, MC = 1 and 0 < MC < 1.
- balance: the positive share overall and per step position (number of steps in the prefix);
  OmegaPRM's binary search is meant to give balanced positives and negatives.
- agreement with exact labels, where an `exact` checker knows whether a prefix is right (the
  arithmetic environment does): accuracy of the hard label, false-positive rate
  P(label 1 | prefix wrong), false-negative rate P(label 0 | prefix right), AUROC of MC
  against the exact label, and the false-discovery rate P(prefix wrong | label 1); split into
  graded complete solutions and rollout-labelled prefixes when records say which (`terminal`):
  a complete solution with the right answer after a wrong step is a false positive too.
- estimated error rates without exact labels: for a right prefix with value v, k rollouts all
  fail with probability (1 - v)^k, so the mean of (1 - MC)^k over positive rollout-labelled
  records is a plug-in estimate of the false-negative rate (it treats positives as right and
  MC as v); the share of positives supported by one rollout (MC = 1/k) flags the
  likeliest false positives (a wrong prefix whose rollout recovered).
- conflicts: the same (question, prefix) labelled both 1 and 0.
- occurrences: the search shares identical prefixes of a question as one state, so a correct
  prefix that many solutions pass through becomes one record while wrong prefixes (which
  rarely repeat) stay distinct. Records carry `occurrences` (how many labelled points each
  stands for; 1 when absent); when any exceeds 1 the report adds the shares above weighted by
  occurrences (`*_by_occurrence`: what the labels look like before de-duplication, and what a
  PRM trained with `weighting="occurrences"` sees).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from mode_jax.dataeval import stats
from prm_jax.envs.judges import EXACT, arithmetic_exact  # noqa: F401  (re-exported)

MC_BINS = (0.0, 1e-9, 0.25, 0.5, 0.75, 1.0 - 1e-9, 1.0 + 1e-9)
MC_BIN_NAMES = ("0", "(0, .25)", "[.25, .5)", "[.5, .75)", "[.75, 1)", "1")




def label_quality(records: Sequence[dict], *, mc_field: str = "mc", steps_field: str = "steps",
                  question_field: str = "question", qid_field: str = "question_id",
                  rollouts_field: str = "rollouts", occurrences_field: str = "occurrences",
                  threshold: float = 0.0,
                  exact: Optional[Callable[[dict], Optional[int]]] = None,
                  n_boot: int = 200, seed: int = 0) -> dict:
  n = len(records)
  if n == 0:
    raise ValueError("label_quality: no records")
  for i, r in enumerate(records):
    if not isinstance(r.get(mc_field), (int, float)) or not isinstance(r.get(steps_field), list):
      raise ValueError(f"record {i}: field {mc_field!r} (number) or {steps_field!r} (list) "
                       "missing")
  mc = np.array([float(r[mc_field]) for r in records])
  hard = (mc > threshold).astype(int)
  pos = np.array([len(r[steps_field]) for r in records])
  groups = [str(r.get(qid_field) or r.get(question_field)) for r in records]
  k = np.array([int(r.get(rollouts_field) or 0) for r in records])
  from prm_jax.prm.data import record_weight
  w = np.array([record_weight({"occurrences": r.get(occurrences_field, 1)}, f"record {i}")
                for i, r in enumerate(records)], float)
  boot = dict(groups=groups, n_boot=n_boot, seed=seed)

  def rate(mask_fn):
    return lambda idx: float(mask_fn(idx).mean()) if len(idx) else float("nan")

  def weighted(mask_fn):
    return lambda idx: (float(np.sum(w[idx] * mask_fn(idx)) / np.sum(w[idx])) if len(idx)
                        else float("nan"))

  out = {"records": n, "questions": len(set(groups)), "threshold": threshold,
         "mc_histogram": dict(zip(MC_BIN_NAMES, np.histogram(mc, MC_BINS)[0].tolist())),
         "mc_zero": stats.bootstrap(rate(lambda i: mc[i] == 0), n, **boot),
         "mc_one": stats.bootstrap(rate(lambda i: mc[i] == 1), n, **boot),
         "mc_between": stats.bootstrap(rate(lambda i: (mc[i] > 0) & (mc[i] < 1)), n, **boot),
         "positive": stats.bootstrap(rate(lambda i: hard[i] == 1), n, **boot)}
  if (w > 1).any():
    out["occurrences"] = int(w.sum())
    out["positive_by_occurrence"] = stats.bootstrap(weighted(lambda i: hard[i] == 1), n, **boot)
    out["mc_zero_by_occurrence"] = stats.bootstrap(weighted(lambda i: mc[i] == 0), n, **boot)
  out["by_position"] = {}
  for p in sorted(set(pos.tolist())):
    sel = np.flatnonzero(pos == p)
    out["by_position"][int(p)] = {
        "records": int(len(sel)), "mean_mc": float(mc[sel].mean()),
        "positive": stats.bootstrap(lambda idx, s=sel: float(hard[s[idx]].mean()), len(sel),
                                    groups=[groups[j] for j in sel], n_boot=n_boot, seed=seed)}
  rolled = np.flatnonzero((k > 0) & (hard == 1))
  if len(rolled):
    fn_plug = (1.0 - mc[rolled]) ** k[rolled]
    single = mc[rolled] <= 1.0 / k[rolled] + 1e-9
    out["estimated_fn"] = stats.bootstrap(lambda idx: float(fn_plug[idx].mean()), len(rolled),
                                          groups=[groups[j] for j in rolled], n_boot=n_boot,
                                          seed=seed)
    out["single_rollout_positives"] = stats.bootstrap(
        lambda idx: float(single[idx].mean()), len(rolled), groups=[groups[j] for j in rolled],
        n_boot=n_boot, seed=seed)
  seen: dict = {}
  for g, r, h in zip(groups, records, hard):
    seen.setdefault((g, "".join(r[steps_field])), set()).add(int(h))
  out["duplicate_prefixes"] = n - len(seen)
  out["conflicting_prefixes"] = sum(len(v) > 1 for v in seen.values())
  if exact is not None:
    out["exact"] = _agreement(records, exact, mc, hard, groups, n_boot, seed, w)
  return out


def _agreement(records, exact, mc, hard, groups, n_boot, seed, weight) -> Optional[dict]:
  from prm_jax.prm.metrics import auroc
  ex = [exact(r) for r in records]
  known = np.array([e is not None for e in ex])
  if not known.any():
    return None
  idx_known = np.flatnonzero(known)
  y = np.array([ex[i] for i in idx_known])
  h, m = hard[idx_known], mc[idx_known]
  g = [groups[i] for i in idx_known]
  boot = dict(groups=g, n_boot=n_boot, seed=seed)

  def cond_rate(label_value, truth):
    def f(idx):
      sel = y[idx] == truth
      return float((h[idx][sel] == label_value).mean()) if sel.any() else float("nan")
    return f
  def false_discovery(idx):
    sel = h[idx] == 1
    return float((y[idx][sel] == 0).mean()) if sel.any() else float("nan")
  out = {"records": int(len(idx_known)), "right_share": float(y.mean()),
         "accuracy": stats.bootstrap(lambda i: float((h[i] == y[i]).mean()), len(y), **boot),
         "false_positive": stats.bootstrap(cond_rate(1, 0), len(y), **boot),
         "false_negative": stats.bootstrap(cond_rate(0, 1), len(y), **boot),
         "false_discovery": stats.bootstrap(false_discovery, len(y), **boot),
         "auroc_mc": stats.bootstrap(lambda i: auroc(m[i], y[i]), len(y), **boot)}
  wk = weight[idx_known]
  if (wk > 1).any():
    def wmean(values, sel):
      return lambda i: (float(np.sum(wk[i] * values[i] * sel[i]) / np.sum(wk[i] * sel[i]))
                        if np.sum(wk[i] * sel[i]) else float("nan"))
    every = np.ones(len(y), bool)
    out["right_share_by_occurrence"] = float(np.sum(wk * y) / np.sum(wk))
    out["accuracy_by_occurrence"] = stats.bootstrap(wmean(h == y, every), len(y), **boot)
    out["false_discovery_by_occurrence"] = stats.bootstrap(wmean(y == 0, h == 1), len(y),
                                                           **boot)
  term = np.array([records[i].get("terminal") for i in idx_known])
  # The recover ratio the likelihood-ratio decision rule assumes (`omegaprm.decision`): mean MC
  # of wrong prefixes over that of right ones, on rollout prefixes (not graded solutions).
  rolled = np.array([records[i].get("terminal") is not True for i in idx_known])

  def recover(idx):
    idx = idx[rolled[idx]]
    right, wrong = m[idx][y[idx] == 1], m[idx][y[idx] == 0]
    return float(wrong.mean() / right.mean()) if len(right) and len(wrong) and right.mean() > 0 \
        else float("nan")
  out["recover_ratio"] = stats.bootstrap(recover, len(y), **boot)
  if all(t in (True, False) for t in term):
    out["by_source"] = {}
    for name, want in (("complete solutions (graded)", True), ("prefixes (rollout MC)", False)):
      sel = np.flatnonzero(term == want)
      if len(sel):
        sub = dict(groups=[g[j] for j in sel], n_boot=n_boot, seed=seed)
        out["by_source"][name] = {
            "records": int(len(sel)), "right_share": float(y[sel].mean()),
            "false_positive": stats.bootstrap(lambda i, s=sel: cond_rate(1, 0)(s[i]), len(sel),
                                              **sub),
            "false_discovery": stats.bootstrap(lambda i, s=sel: false_discovery(s[i]),
                                               len(sel), **sub)}
  return out
