"""MovieLens-100k (from the recbole wheel; `pip install --no-deps recbole==1.2.1`): each user's
latest 20% of 4-5 star ratings are held out; recommenders see the rest. Exact recall@10 /
NDCG@10 against the held-out movies for the popularity list and for the popularity list
re-weighted by the user's liked-genre profile (the information RecLLM's profile text carries).

    python -m benchmarks.crs_movielens
"""

from __future__ import annotations


import json

from absl import flags
import numpy as np

from crs_jax import metrics, movielens
from mode_jax import cli


def main(argv=None):
  """Prints the table and one JSON line; returns the rows (no flags)."""
  cli.parse_argv(flags.FlagValues(), argv)
  ml = movielens.load()
  split = movielens.holdout(ml.ratings, min_rating=4, fraction=0.2)
  rows = {}
  for method in ("popularity", "profile"):
    ranked = movielens.rank_for_users(split, ml.movies, method, k=10)
    users = sorted(ranked)
    rows[method] = {
        "users": len(users),
        "recall@10": float(np.mean([metrics.recall_at_k(ranked[u], split.targets[u], 10)
                                    for u in users])),
        "ndcg@10": float(np.mean([metrics.ndcg_at_k(ranked[u], split.targets[u], 10)
                                  for u in users]))}
  u0 = sorted(split.history)[0]
  print(f"profile of user {u0}: {movielens.profile_text(split.history[u0], ml.movies)}")
  print("| method | users | recall@10 | NDCG@10 |\n|---|---|---|---|")
  for m, r in rows.items():
    print(f"| {m} | {r['users']} | {r['recall@10']:.4f} | {r['ndcg@10']:.4f} |")
  print(json.dumps(rows))
  return rows


if __name__ == "__main__":
  main()
