"""The search API: BM25 against the closed form, attribute filters read exactly from the
query, and items added to the index found without rebuilding anything else."""

import math

import numpy as np

from crs_jax import catalogue, search


def test_bm25_equals_the_closed_form():
  docs = ["the red fox", "the lazy dog sleeps", "red red wine"]
  bm = search.BM25(k1=1.2, b=0.75)
  bm.add(docs)
  lengths = [3, 4, 3]
  avg = sum(lengths) / 3

  def term(tf, df, dl):
    idf = math.log(1 + (3 - df + 0.5) / (df + 0.5))
    return idf * tf * 2.2 / (tf + 1.2 * (1 - 0.75 + 0.75 * dl / avg))
  expected = [term(1, 2, 3) + term(1, 2, 3), term(1, 2, 4), term(2, 2, 3)]   # "the red"
  np.testing.assert_allclose(bm.scores("The RED"), expected, rtol=1e-12)
  np.testing.assert_allclose(bm.scores("unseen words"), 0)


def test_filters_rank_full_matches_first_and_drop_negated_values():
  cat = catalogue.make_catalogue(300, seed=1)
  idx = search.SearchIndex(cat.items)
  by = cat.by_id
  top = idx.search("a comedy from the 1990s, not French", k=20)
  full = [i for i in top if by[i].has("genre", "comedy") and by[i].has("era", "1990s")]
  assert top[:len(full)] == full and full
  assert all(not by[i].has("language", "French") for i in top)
  assert idx.search("comedy", k=5, exclude=top[:2])[0] not in top[:2]


def test_added_items_are_found_without_retraining():
  cat = catalogue.make_catalogue(100, seed=0)
  idx = search.SearchIndex(cat.items)
  new = catalogue.make_items(5, seed=9, start=100)
  idx.add(new)
  for it in new:
    v = it.attributes()
    assert idx.search(f"{it.title} {v['genre']} {v['era']} {v['language']}", k=1) == [it.id]
