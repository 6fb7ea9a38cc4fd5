"""Step-level statistics of PRM scores against exact step labels with cluster-bootstrap
intervals over problems (a problem's solutions are resampled together): step AUROC, the
first-error AUROC within position (`prm.metrics.first_error_auroc`) and paired differences of
two PRMs on the same steps. Used by the pipeline's and the learnability study's reports.
"""

from __future__ import annotations

import numpy as np

from mode_jax.dataeval import stats
from prm_jax.prm import metrics


def step_auroc_ci(probs, exact, owner, test, n_boot: int, seed: int = 0) -> dict:
  """Step AUROC over the solutions `test` (cluster bootstrap over their problems)."""
  p = [np.asarray(probs[j]) for j in test]
  y = [np.asarray(exact[j]) for j in test]
  groups = [owner[j] for j in test]

  def stat(idx):
    return metrics.auroc(np.concatenate([p[i] for i in idx]), np.concatenate([y[i] for i in idx]))
  return stats.bootstrap(stat, len(test), groups=groups, n_boot=n_boot, seed=seed)


def first_error_ci(probs, exact, owner, test, n_boot: int, seed: int = 0) -> dict:
  """`metrics.first_error_auroc` over the solutions `test` (cluster bootstrap over their
  problems)."""
  p, y = [probs[j] for j in test], [exact[j] for j in test]
  return stats.bootstrap(lambda idx: metrics.first_error_auroc([p[i] for i in idx],
                                                               [y[i] for i in idx]),
                         len(test), groups=[owner[j] for j in test], n_boot=n_boot, seed=seed)


def paired_auroc(pa, pb, exact, owner, test, n_boot: int, seed: int = 0,
                 first_error: bool = False) -> dict:
  """AUROC(a) - AUROC(b) on the same test steps (all steps, or `metrics.first_error_auroc`),
  problems resampled together."""
  y = [np.asarray(exact[j]) for j in test]
  a = [np.asarray(pa[j]) for j in test]
  b = [np.asarray(pb[j]) for j in test]

  def stat(idx):
    if first_error:
      yy = [y[i] for i in idx]
      return (metrics.first_error_auroc([a[i] for i in idx], yy)
              - metrics.first_error_auroc([b[i] for i in idx], yy))
    yy = np.concatenate([y[i] for i in idx])
    return (metrics.auroc(np.concatenate([a[i] for i in idx]), yy)
            - metrics.auroc(np.concatenate([b[i] for i in idx]), yy))
  return stats.bootstrap(stat, len(test), groups=[owner[j] for j in test], n_boot=n_boot,
                         seed=seed)


def intervals(names, probs, exact, owner, test, n_boot: int, pairs=()) -> dict:
  """Step AUROC and first-error AUROC intervals of every PRM in `names` on the solutions
  `test`, the position-only baseline's step AUROC, and paired differences for `pairs` ((a, b):
  a minus b; KeyError naming "a-b" when a side is not in `probs`)."""
  out = {"position_step_auroc_ci": step_auroc_ci(metrics.position_scores(exact), exact, owner,
                                                 test, n_boot),
         "prms": {k: {"step_auroc_ci": step_auroc_ci(probs[k], exact, owner, test, n_boot),
                      "first_error_auroc_ci": first_error_ci(probs[k], exact, owner, test,
                                                             n_boot)} for k in names},
         "paired": {}, "paired_first_error": {}}
  for a, b in pairs:
    key = f"{a}-{b}"
    if a not in probs or b not in probs:
      raise KeyError(key)
    out["paired"][key] = paired_auroc(probs[a], probs[b], exact, owner, test, n_boot)
    out["paired_first_error"][key] = paired_auroc(probs[a], probs[b], exact, owner, test,
                                                  n_boot, first_error=True)
  return out
