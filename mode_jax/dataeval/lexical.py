"""Lexical diversity of a set of texts.

Texts are split into word tokens by `tokenize` (lower-cased `\\w+` runs and single punctuation
marks), so "3*4=12" is ["3", "*", "4", "=", "12"].

- distinct-n (Li et al. 2016): number of distinct n-grams over the whole set / number of
  n-grams. 1 when no n-gram repeats; -> 0 for one sentence repeated many times. It falls as the
  set grows, so compare sets of equal size (the report subsamples to a common size).
- n-gram entropy (Ent-n, Zhang et al. 2018): Shannon entropy in bits of the set's n-gram
  frequency distribution, -sum_g p(g) log2 p(g).
- self-BLEU (Zhu et al. 2018, Texygen): the mean over texts h of BLEU-N(h, references = every
  OTHER text of the set), never h itself (implementations that keep h among its own
  references report 1.0 for any set). Per-text BLEU is NLTK's `sentence_bleu` with uniform
  weights over 1..N and smoothing method 1 (epsilon 0.1 for zero-match orders): clipped counts
  against the maximum count over references, brevity penalty against the closest reference
  length (shorter wins ties). High = the texts repeat each other; 1 when every text has a copy.
  Computed exactly in O(total n-grams): per n-gram the two largest per-text counts give the
  maximum over all texts but h, and the sorted lengths give the closest other length
  (`tests/prm/test_dataeval_lexical.py` checks it against NLTK).
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from typing import Iterable, Sequence

_TOKEN = re.compile(r"\w+|[^\w\s]")


def tokenize(text: str) -> list[str]:
  """Lower-cased word and number tokens of `text`."""
  return _TOKEN.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> list[tuple]:
  """The contiguous n-grams of `tokens` as tuples."""
  return [tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]


def _corpus_counts(tokenized: Iterable[Sequence[str]], n: int) -> Counter:
  c: Counter = Counter()
  for toks in tokenized:
    c.update(ngrams(toks, n))
  return c


def distinct_n(tokenized: Sequence[Sequence[str]], n: int) -> float:
  """Distinct n-grams / all n-grams over the corpus (nan when there are none)."""
  c = _corpus_counts(tokenized, n)
  total = sum(c.values())
  return len(c) / total if total else float("nan")


def ngram_entropy(tokenized: Sequence[Sequence[str]], n: int) -> float:
  """Shannon entropy (bits) of the corpus's n-gram distribution."""
  c = _corpus_counts(tokenized, n)
  total = sum(c.values())
  if not total:
    return float("nan")
  return -sum(v / total * math.log2(v / total) for v in c.values())


def self_bleu(tokenized: Sequence[Sequence[str]], max_n: int = 4, epsilon: float = 0.1) -> float:
  """Mean BLEU-`max_n` of each text against all the others (see module doc)."""
  m = len(tokenized)
  if m < 2:
    return float("nan")
  per_text = [[Counter(ngrams(t, n)) for n in range(1, max_n + 1)] for t in tokenized]
  top = []                      # per order: ngram -> [largest count, second largest count]
  for k in range(max_n):
    best: dict = {}
    for counts in per_text:
      for g, v in counts[k].items():
        b = best.get(g)
        if b is None:
          best[g] = [v, 0]
        elif v > b[0]:
          b[1], b[0] = b[0], v
        elif v > b[1]:
          b[1] = v
    top.append(best)
  lengths = sorted(len(t) for t in tokenized)
  total = 0.0
  for toks, counts in zip(tokenized, per_text):
    c = len(toks)
    num = []
    for k in range(max_n):
      matched = 0
      for g, v in counts[k].items():
        b = top[k][g]
        others = b[1] if v == b[0] else b[0]
        matched += min(v, others)
      num.append(matched)
    if num[0] == 0:
      continue                   # NLTK: BLEU 0 without a unigram match
    r = _closest_other_length(lengths, c)
    bp = 1.0 if c > r else (0.0 if c == 0 else math.exp(1 - r / c))
    logs = 0.0
    for k in range(max_n):
      den = max(1, c - k)
      p = num[k] / den if num[k] else epsilon / den
      logs += math.log(p) / max_n
    total += bp * math.exp(logs)
  return total / m


def _closest_other_length(lengths: list[int], c: int) -> int:
  """The length closest to c among `lengths` (sorted, holding c at least once) with one
  occurrence of c left out; the shorter one on ties (NLTK's closest_ref_length). O(log n)."""
  lo, hi = bisect.bisect_left(lengths, c), bisect.bisect_right(lengths, c)
  if hi - lo > 1:
    return c                              # another text has the same length
  cands = [lengths[x] for x in (lo - 1, hi) if 0 <= x < len(lengths)]
  return min(cands, key=lambda L: (abs(L - c), L))
