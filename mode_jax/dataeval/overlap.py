"""Duplicates, near-duplicates, and leakage of test items into generated training data.

- exact duplicates: texts equal after `normalize` (lower-cased word tokens, so spacing and
  case do not matter); the duplicate
  share is 1 - distinct / n.
- near-duplicates (Lee et al. 2022, "Deduplicating training data"): Jaccard similarity of the
  sets of word 3-gram shingles >= 0.8, found with MinHash LSH (`datasketch`, 128 permutations,
  fixed seed) and every candidate pair confirmed with its exact Jaccard; pairs that are exact
  duplicates are not counted again. Reported: the share of texts with a near-duplicate,
  the number of near-duplicate clusters (union-find over the pairs), the largest cluster.
- leakage: for each test item, whether the training set holds the same normalised text
  (exact) or shares a word n-gram with it (n = 13 as in GPT-3's contamination study; a test
  item shorter than n words counts when it occurs whole in a training text). Template text
  shared by every item (e.g. "What is the result?") is a real n-gram overlap: pick n longer
  than the template's fixed spans.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from mode_jax.dataeval import stats
from mode_jax.dataeval.lexical import ngrams, tokenize


def normalize(text: str) -> str:
  """Lower-cased word tokens joined by single spaces ("What is 2+2?" -> "what is 2 + 2 ?")."""
  return " ".join(tokenize(text))


def exact_duplicates(texts: Sequence[str]) -> dict:
  """{"n", "distinct", "duplicate_share"} of the normalised texts."""
  norm = [normalize(t) for t in texts]
  n, distinct = len(norm), len(set(norm))
  return {"n": n, "distinct": distinct, "duplicate_share": 1 - distinct / n if n else float("nan")}


def _shingles(text: str, k: int = 3) -> set:
  toks = tokenize(text)
  return {" ".join(g) for g in ngrams(toks, k)} if len(toks) >= k else {" ".join(toks)}


def near_duplicates(texts: Sequence[str], *, threshold: float = 0.8, num_perm: int = 128,
                    seed: int = 1) -> dict:
  """Near-duplicates by MinHash LSH over word 3-gram shingles (Jaccard >= `threshold`).

  Returns:
    {"threshold", "share_with_near_duplicate", "clusters", "largest_cluster"}."""
  from datasketch import MinHash, MinHashLSH
  norm = [normalize(t) for t in texts]
  sh = [_shingles(t) for t in norm]
  lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
  hashes = []
  for i, s in enumerate(sh):
    m = MinHash(num_perm=num_perm, seed=seed)
    m.update_batch([x.encode() for x in s])
    hashes.append(m)
    lsh.insert(str(i), m)
  parent = list(range(len(texts)))

  def find(a):
    while parent[a] != a:
      parent[a] = parent[parent[a]]
      a = parent[a]
    return a
  pairs = 0
  has_near = np.zeros(len(texts), bool)
  for i, m in enumerate(hashes):
    for j in map(int, lsh.query(m)):
      if j <= i or norm[i] == norm[j]:
        continue
      jac = len(sh[i] & sh[j]) / max(1, len(sh[i] | sh[j]))
      if jac >= threshold:
        pairs += 1
        has_near[i] = has_near[j] = True
        parent[find(i)] = find(j)
  sizes: dict = {}
  for i in np.flatnonzero(has_near):
    sizes[find(i)] = sizes.get(find(i), 0) + 1
  return {"threshold": threshold, "pairs": pairs,
          "share_with_near_duplicate": float(has_near.mean()) if len(texts) else float("nan"),
          "clusters": len(sizes), "largest_cluster": max(sizes.values(), default=0)}


def leakage(train_texts: Sequence[str], test_texts: Sequence[str], *, n: int = 13,
            n_boot: int = 200, seed: int = 0) -> dict:
  """Leakage of `test_texts` into `train_texts`: the share of test items found exactly
  (normalised) and the share sharing a word `n`-gram, each with a bootstrap interval."""
  train_norm = {normalize(t) for t in train_texts}
  train_grams: set = set()
  joined = []
  for t in train_texts:
    toks = tokenize(t)
    train_grams.update(ngrams(toks, n))
    joined.append(" " + " ".join(toks) + " ")
  exact = np.array([normalize(t) in train_norm for t in test_texts])
  gram = np.zeros(len(test_texts), bool)
  for i, t in enumerate(test_texts):
    toks = tokenize(t)
    if len(toks) >= n:
      gram[i] = any(g in train_grams for g in ngrams(toks, n))
    else:
      needle = " " + " ".join(toks) + " "
      gram[i] = any(needle in j for j in joined)
  m = len(test_texts)
  return {"test_items": m, "n": n,
          "exact": stats.bootstrap(lambda i: float(exact[i].mean()), m, n_boot=n_boot, seed=seed),
          "ngram": stats.bootstrap(lambda i: float(gram[i].mean()), m, n_boot=n_boot, seed=seed)}
