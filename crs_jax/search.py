"""The plain search API an LLM-written query goes to: attribute filters read exactly from the
query (`crs_jax.nlu`) plus Okapi BM25 over title and description, over an index that grows
without retraining anything (`add`).

BM25 (Robertson et al.; Lucene's non-negative idf):
    idf(t)      = ln(1 + (N - n_t + 0.5) / (n_t + 0.5))
    score(q, d) = sum_{t in q} idf(t) * f(t,d) (k1 + 1) / (f(t,d) + k1 (1 - b + b |d| / avgdl))

Ranking: items matching every positive value of the query and none of its negated ones first,
then by how many positive values they match; within a level by BM25 score, then popularity.
"""

from __future__ import annotations

import math
import re
from typing import Iterable, Optional, Sequence

import numpy as np
import scipy.sparse

from crs_jax import catalogue as catalogue_lib
from crs_jax import nlu

_TOKEN = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")


def tokenize(text: str) -> list[str]:
  """Lower-cased word tokens."""
  return _TOKEN.findall(text.lower())


class BM25:
  """Okapi BM25 over a growing list of documents; scores of all documents for a query."""

  def __init__(self, k1: float = 1.5, b: float = 0.75):
    self.k1, self.b = k1, b
    self.vocab: dict[str, int] = {}
    self._rows, self._cols, self._vals, self.lengths = [], [], [], []
    self._matrix = None

  def add(self, docs: Iterable[str]) -> None:
    """Indexes more documents."""
    for text in docs:
      counts: dict = {}
      toks = tokenize(text)
      for t in toks:
        j = self.vocab.setdefault(t, len(self.vocab))
        counts[j] = counts.get(j, 0) + 1
      d = len(self.lengths)
      self._rows += [d] * len(counts)
      self._cols += list(counts)
      self._vals += list(counts.values())
      self.lengths.append(len(toks))
    self._matrix = None

  def _tf(self):
    if self._matrix is None:
      shape = (len(self.lengths), max(len(self.vocab), 1))
      self._matrix = scipy.sparse.csc_matrix((self._vals, (self._rows, self._cols)), shape=shape,
                                             dtype=np.float64)
      self._df = np.diff(self._matrix.indptr)
    return self._matrix

  def scores(self, query: str) -> np.ndarray:
    """[num_docs] float64."""
    tf = self._tf()
    n = len(self.lengths)
    lengths = np.asarray(self.lengths, dtype=np.float64)
    norm = self.k1 * (1 - self.b + self.b * lengths / max(lengths.mean(), 1e-9))
    out = np.zeros(n)
    for t in tokenize(query):
      j = self.vocab.get(t)
      if j is None:
        continue
      col = tf.getcol(j)
      rows, f = col.indices, col.data
      idf = math.log(1 + (n - self._df[j] + 0.5) / (self._df[j] + 0.5))
      out[rows] += idf * f * (self.k1 + 1) / (f + norm[rows])
    return out


class SearchIndex:
  """search(query, k) -> ranked item ids over every item added so far."""

  def __init__(self, items: Iterable[catalogue_lib.Item] = (),
               schema: Optional[catalogue_lib.Schema] = None):
    self.items: list[catalogue_lib.Item] = []
    self._schema = schema          # None: read off the items (values a query may name)
    self._has: dict = {}           # (attribute, value) -> [items] bool
    self._pop, self._ids = np.zeros(0), np.zeros(0, dtype=str)
    self.bm25 = BM25()
    self.add(items)

  def add(self, items: Iterable[catalogue_lib.Item]) -> None:
    """Indexes more items (new items are searchable at once)."""
    items = list(items)
    self.items += items
    self.bm25.add(f"{it.title} {it.description}" for it in items)
    old = len(self.items) - len(items)
    keys = {(a, v) for it in items for a, vs in it.attrs for v in vs} | set(self._has)
    for k in keys:                       # append the new items' columns, nothing recomputed
      col = np.array([it.has(*k) for it in items], dtype=bool)
      self._has[k] = np.concatenate([self._has.get(k, np.zeros(old, dtype=bool)), col])
    self._pop = np.concatenate([self._pop, [it.popularity for it in items]])
    self._ids = np.concatenate([self._ids, np.asarray([it.id for it in items], dtype=str)])
    self.schema = self._schema or catalogue_lib.Schema.infer(self.items)

  def search(self, query: str, k: int = 10, exclude: Sequence[str] = ()) -> list[str]:
    """The `k` best item ids for a query: hard attribute filters from what it asks and rejects,
    then BM25; `exclude` skips items already shown."""
    pos = nlu.positive_values(query, self.schema)
    neg = nlu.negative_values(query, self.schema) - pos
    n = len(self.items)
    none = np.zeros(n, dtype=bool)
    matched = np.zeros(n)
    for a, v in pos:
      matched += self._has.get((a, v), none)
    banned = np.zeros(n, dtype=bool)
    for a, v in neg:
      banned |= self._has.get((a, v), none)
    if exclude:
      banned |= np.isin(self._ids, list(exclude))
    level = matched + (~banned) * (len(pos) + 1)   # every non-banned item above every banned
    bm = self.bm25.scores(query)
    order = np.lexsort((self._ids, -self._pop, -bm, -level))
    order = order[~banned[order]]
    return [str(self._ids[i]) for i in order[:k]]
