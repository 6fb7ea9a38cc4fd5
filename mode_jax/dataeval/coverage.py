"""Coverage and bias: what the data is about, how long it is, and how evenly items recur.

- coverage: count and share of items per value of a field (task, category, difficulty), side
  by side with the reference set when it has the field; values of the reference that the
  generated set never covers are listed.
- lengths: word tokens per text (`lexical.tokenize`), mean with a bootstrap interval, median,
  10th / 90th percentiles.
- recurrence: the Gini coefficient (`stats.gini`) of how often each question / answer / task
  recurs in the set: 0 when all recur equally often, near 1 when a few dominate.
"""

from __future__ import annotations

from collections import Counter
from typing import Optional, Sequence

import numpy as np

from mode_jax.dataeval import stats
from mode_jax.dataeval.lexical import tokenize


def coverage(values: Sequence, reference: Optional[Sequence] = None) -> dict:
  """Per value: count and share in the generated set and in the reference.

  Returns:
    {"distinct", "rows": [{"value", "generated", "generated_share", "reference",
    "reference_share"}] (most frequent first), "uncovered_reference_values"}."""
  gen = Counter(str(v) for v in values)
  ref = Counter(str(v) for v in reference) if reference is not None else Counter()
  n_g, n_r = sum(gen.values()), sum(ref.values())
  rows = []
  for key in sorted(set(gen) | set(ref), key=lambda k: (-gen[k], k)):
    rows.append({"value": key, "generated": gen[key], "generated_share": gen[key] / n_g if n_g
                 else 0.0, "reference": ref[key], "reference_share": ref[key] / n_r if n_r
                 else 0.0})
  return {"rows": rows, "distinct": len(gen),
          "uncovered_reference_values": sorted(k for k in ref if k not in gen)}


def lengths(texts: Sequence[str], *, n_boot: int = 200, seed: int = 0) -> dict:
  """Text lengths in words: mean with a bootstrap interval, median, p10, p90 and the values."""
  lens = np.array([len(tokenize(t)) for t in texts], np.float64)
  if not len(lens):
    return {"mean": stats.estimate(np.nan, np.nan, np.nan, 0), "values": []}
  return {"mean": stats.bootstrap(lambda i: float(lens[i].mean()), len(lens), n_boot=n_boot,
                                  seed=seed),
          "median": float(np.median(lens)), "p10": float(np.percentile(lens, 10)),
          "p90": float(np.percentile(lens, 90)), "values": lens.tolist()}
