"""Semantic diversity of a set of embeddings (rows of X, one per text; see `embed`).

- Vendi score (Friedman & Dieng 2023) with the cosine-similarity kernel: rows are
  L2-normalised, K = X X^T / n, and VS = exp(-sum_i lambda_i log lambda_i) over the eigenvalues
  of K, the "effective number of distinct items": 1 when all n items are the same, n when they
  are mutually orthogonal. For n > d the non-zero eigenvalues are those of the d x d matrix
  X^T X / n (the dual form), which is what is computed then (O(n d^2), not O(n^3)).
- mean pairwise cosine distance: the mean of 1 - cos(x_i, x_j) over pairs i != j, from the sum
  of the normalised rows: 1 - (||sum_i x_i||^2 - n) / (n (n - 1)).
"""

from __future__ import annotations

import numpy as np


def _normalize(x: np.ndarray) -> np.ndarray:
  x = np.asarray(x, np.float64)
  norm = np.linalg.norm(x, axis=1, keepdims=True)
  if (norm == 0).any():
    raise ValueError("an embedding row is all zeros (cosine similarity undefined)")
  return x / norm


def vendi_score(x: np.ndarray) -> float:
  """Vendi score of the rows of x [n, d] (cosine similarity kernel): the effective number of
  distinct items, 1 (all equal) to n."""
  x = _normalize(x)
  n, d = x.shape
  if n == 0:
    return float("nan")
  k = (x @ x.T) if n <= d else (x.T @ x)
  w = np.linalg.eigvalsh(k / n)
  w = w[w > 1e-12]
  return float(np.exp(-np.sum(w * np.log(w))))


def mean_cosine_distance(x: np.ndarray) -> float:
  """Mean cosine distance over pairs of distinct rows of x [n, d]."""
  x = _normalize(x)
  n = x.shape[0]
  if n < 2:
    return float("nan")
  s = x.sum(0)
  return float(1.0 - (s @ s - n) / (n * (n - 1)))
