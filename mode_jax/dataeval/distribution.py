"""How close a generated set is to a reference set, on embeddings (rows; see `embed`).

- MAUVE (Pillutla et al. 2021) through the authors' `mauve-text` package on precomputed
  features: both sets are embedded, L2-normalised, PCA-reduced (90% of the variance) and
  quantised TOGETHER by k-means (max(2, min(n_p, n_q) / 10) clusters); with the two cluster
  histograms P (reference) and Q (generated), the divergence frontier is
  {(exp(-c KL(Q || R_w)), exp(-c KL(P || R_w))) : R_w = w P + (1 - w) Q, w in (0, 1)}, c = 5,
  and MAUVE is the area under it: 1 for identical histograms, -> 0 for disjoint supports.
  The quantisation depends on the k-means seed, so `mauve_seeds` runs several seeds and reports
  the mean and the spread (min, max).
- Frechet distance of Gaussians fitted to the embeddings (the FID formula):
  ||mu_p - mu_q||^2 + Tr(S_p + S_q - 2 (S_p S_q)^(1/2)), the trace of the root from the
  eigenvalues of S_p^(1/2) S_q S_p^(1/2). 0 for identical sets; it has a
  positive small-sample bias, so compare values at equal sample sizes.
- discriminator AUC: a logistic regression (standardised features, L2, C = 1) trained to tell
  generated (1) from reference (0) rows, scored out of fold (5 folds, stratified; items with
  the same `groups` value, e.g. identical texts, share a fold so a copy in the training folds
  cannot give its twin away). Held-out ROC AUC 0.5: indistinguishable; 1: separable.
"""

from __future__ import annotations

import contextlib
import io
from typing import Optional, Sequence

import numpy as np

from mode_jax.dataeval import stats


def mauve_score(p: np.ndarray, q: np.ndarray, seed: int = 0, num_buckets="auto") -> dict:
  """{"mauve", "curve" [(x, y)], "num_buckets"} for reference rows p and generated rows q."""
  from mauve import compute_mauve
  with _quiet():                     # faiss prints k-means warnings from C++
    out = compute_mauve(p_features=np.asarray(p, np.float32), q_features=np.asarray(q, np.float32),
                        num_buckets=num_buckets, seed=seed, verbose=False)
  curve = np.asarray(out.divergence_curve)[1:-1]       # drop the (0, inf) / (inf, 0) ends
  return {"mauve": float(out.mauve), "curve": curve.tolist(), "num_buckets": int(out.num_buckets)}


@contextlib.contextmanager
def _quiet():
  import os
  import sys
  sys.stdout.flush()
  sys.stderr.flush()
  saved = [os.dup(1), os.dup(2)]
  null = os.open(os.devnull, os.O_WRONLY)
  try:
    os.dup2(null, 1)
    os.dup2(null, 2)
    with contextlib.redirect_stdout(io.StringIO()):
      yield
  finally:
    os.dup2(saved[0], 1)
    os.dup2(saved[1], 2)
    for fd in saved + [null]:
      os.close(fd)


def mauve_seeds(p: np.ndarray, q: np.ndarray, seeds: Sequence[int] = (0, 1, 2, 3, 4)) -> dict:
  """MAUVE over several k-means seeds: mean, spread, and the first seed's frontier."""
  runs = [mauve_score(p, q, seed=s) for s in seeds]
  vals = np.array([r["mauve"] for r in runs])
  return {"mean": float(vals.mean()), "min": float(vals.min()), "max": float(vals.max()),
          "values": vals.tolist(), "curve": runs[0]["curve"],
          "num_buckets": runs[0]["num_buckets"]}


def frechet_distance(p: np.ndarray, q: np.ndarray) -> float:
  """Frechet distance between Gaussians fitted to embeddings p [n, d] and q [m, d]."""
  p, q = np.asarray(p, np.float64), np.asarray(q, np.float64)
  mu1, mu2 = p.mean(0), q.mean(0)
  s1, s2 = np.atleast_2d(np.cov(p, rowvar=False)), np.atleast_2d(np.cov(q, rowvar=False))
  # Tr((S_p S_q)^(1/2)) = sum of sqrt eigenvalues of S_p^(1/2) S_q S_p^(1/2) (symmetric PSD)
  w, v = np.linalg.eigh(s1)
  half = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
  tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh(half @ s2 @ half), 0, None)).sum()
  diff = mu1 - mu2
  return float(max(0.0, diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean))


def discriminator_scores(p: np.ndarray, q: np.ndarray, *, groups: Optional[Sequence] = None,
                         folds: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """Out-of-fold P(generated) for every row of [p; q] and the labels (0 = p, 1 = q)."""
  from sklearn.linear_model import LogisticRegression
  from sklearn.model_selection import StratifiedGroupKFold
  from sklearn.pipeline import make_pipeline
  from sklearn.preprocessing import StandardScaler
  x = np.concatenate([p, q]).astype(np.float64)
  y = np.concatenate([np.zeros(len(p), int), np.ones(len(q), int)])
  g = np.arange(len(x)) if groups is None else np.asarray(groups)
  folds = min(folds, len(p), len(q))
  if folds < 2:
    raise ValueError("discriminator: each set needs at least 2 rows")
  scores = np.zeros(len(x))
  split = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
  for tr, te in split.split(x, y, g):
    if len(np.unique(y[tr])) < 2:
      scores[te] = 0.5
      continue
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    clf.fit(x[tr], y[tr])
    scores[te] = clf.predict_proba(x[te])[:, 1]
  return scores, y


def discriminator_auc(p: np.ndarray, q: np.ndarray, *, groups: Optional[Sequence] = None,
                      folds: int = 5, seed: int = 0, n_boot: int = 200) -> stats.Estimate:
  """Held-out AUC with a bootstrap interval over the scored rows."""
  scores, y = discriminator_scores(p, q, groups=groups, folds=folds, seed=seed)

  def stat(idx):
    return stats.auroc(scores[idx], y[idx])
  return stats.bootstrap(stat, len(y), n_boot=n_boot, seed=seed)
