"""Lexical diversity definitions: distinct-n, entropy, self-BLEU against NLTK."""

import math
import random

import numpy as np
import pytest
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

from mode_jax.dataeval import lexical


def _random_texts(rng, n, vocab=8, lo=1, hi=12):
  words = [f"w{i}" for i in range(vocab)]
  return [[rng.choice(words) for _ in range(rng.randint(lo, hi))] for _ in range(n)]


def _nltk_self_bleu(toks, max_n=4):
  w = (1.0 / max_n,) * max_n
  sm = SmoothingFunction().method1
  return np.mean([sentence_bleu(toks[:i] + toks[i + 1:], h, weights=w, smoothing_function=sm)
                  for i, h in enumerate(toks)])


@pytest.mark.parametrize("seed,vocab,max_n", [(0, 5, 4), (1, 8, 4), (2, 30, 4), (3, 6, 2),
                                              (4, 4, 3)])
def test_self_bleu_matches_nltk_each_text_against_all_others(seed, vocab, max_n):
  rng = random.Random(seed)
  toks = _random_texts(rng, 25, vocab)
  toks += [toks[3], list(toks[5][:2])]          # an exact duplicate and a short prefix
  assert lexical.self_bleu(toks, max_n) == pytest.approx(_nltk_self_bleu(toks, max_n), abs=1e-9)


def test_self_bleu_duplicates_high_random_low():
  rng = random.Random(0)
  base = [lexical.tokenize(" ".join(rng.choice("abcdefghij") * 3 for _ in range(12)))
          for _ in range(20)]
  assert lexical.self_bleu(base + base) == pytest.approx(1.0)
  rand = [["".join(rng.choice("abcdefghijklmnop") for _ in range(6)) for _ in range(10)]
          for _ in range(30)]
  assert lexical.self_bleu(rand) < 0.05         # with itself among its references it would be 1


def test_distinct_n_and_entropy():
  rep = [lexical.tokenize("the cat sat on the mat")] * 200
  for n in (1, 2, 3, 4):
    assert lexical.distinct_n(rep, n) < 0.01
  uniq = [[f"t{i}" for i in range(50)]]
  assert lexical.distinct_n(uniq, 1) == 1.0 and lexical.distinct_n(uniq, 3) == 1.0
  assert lexical.ngram_entropy(uniq, 1) == pytest.approx(math.log2(50))
  assert lexical.ngram_entropy([["a", "a", "b", "b"]], 1) == pytest.approx(1.0)
  assert lexical.tokenize("3*4=12, OK") == ["3", "*", "4", "=", "12", ",", "ok"]
