"""Retrieval over a large, changing catalogue: the search API RecLLM's query writer talks to,
against the exact best items of users whose utility is known.

    python -m benchmarks.crs_retrieval [--sizes=1000,10000,100000] [--goals=100]

Per catalogue size: index build time, query latency, and recall@10 / NDCG@10 against the
acceptable set (`crs_jax.goals.judge`) of `--goals` sampled users, for the query a perfect query
writer would send (every goal value stated: constraints, likes, "not <dislike>"), for three
rankers on the same index: attribute filters + BM25 (the project's search), BM25 alone (what a
plain text search engine gives), and popularity. Then 1% new items are added to the index
(`SearchIndex.add`, nothing retrained) and each is searched for by its own attributes and title.
"""

from __future__ import annotations

import json
import time

from absl import flags
import numpy as np

from crs_jax import baselines, catalogue, goals, metrics, search
from mode_jax import cli


def perfect_query(g: goals.Goal) -> str:
  want = dict(g.constraints)
  for a, w in g.likes.items():
    want.setdefault(a, max(w, key=w.get))
  avoid = [(a, v) for a, d in g.dislikes.items() for v in d]
  return baselines.RuleRecommender.query(want, avoid)


def run(size: int, num_goals: int, seed: int = 0) -> dict:
  items = catalogue.make_items(size, seed)
  cat = catalogue.Catalogue(tuple(items))
  t0 = time.perf_counter()
  index = search.SearchIndex(items)
  build = time.perf_counter() - t0
  rng = np.random.default_rng(seed)
  gs = [goals.sample_goal(cat, rng) for _ in range(num_goals)]
  judged = [goals.judge(g, cat) for g in gs]
  popular = [it.id for it in catalogue.popularity_order(items)[:10]]
  out = {"items": size, "index_build_s": build}
  rankers = {
      "attributes+bm25": lambda q: index.search(q, k=10),
      "bm25 only": lambda q: [str(index._ids[i]) for i in
                              np.argsort(-index.bm25.scores(q), kind="stable")[:10]],
      "popularity": lambda q: popular,
  }
  for name, fn in rankers.items():
    rec, ndcg, lat = [], [], []
    for g, j in zip(gs, judged):
      q = perfect_query(g)
      t0 = time.perf_counter()
      ranked = fn(q)
      lat.append(time.perf_counter() - t0)
      rec.append(metrics.recall_at_k(ranked, j.acceptable, 10))
      ndcg.append(metrics.ndcg_at_k(ranked, j.acceptable, 10))
    out[name] = {"recall@10": float(np.mean(rec)), "ndcg@10": float(np.mean(ndcg)),
                 "ms_per_query": 1000 * float(np.median(lat))}
  new = catalogue.make_items(max(1, size // 100), seed + 1, start=size)
  t0 = time.perf_counter()
  index.add(new)
  out["add_1pct_s"] = time.perf_counter() - t0
  found = sum(index.search(f"{it.title} " + " ".join(it.attributes().values()), k=1) == [it.id]
              for it in new[:100])
  out["new_items_found_at_1"] = found / min(len(new), 100)
  return out


def main(argv=None):
  p = flags.FlagValues()
  flags.DEFINE_string("sizes", "1000,10000,100000", "", flag_values=p)
  flags.DEFINE_integer("goals", 100, "", flag_values=p)
  args = cli.parse_argv(p, argv)
  rows = [run(int(n), args.goals) for n in args.sizes.split(",")]
  print("| items | ranker | recall@10 | NDCG@10 | ms/query | index build s | add 1% s | "
        "new found@1 |")
  print("|---|---|---|---|---|---|---|---|")
  for r in rows:
    for name in ("attributes+bm25", "bm25 only", "popularity"):
      m = r[name]
      print(f"| {r['items']:,} | {name} | {m['recall@10']:.3f} | {m['ndcg@10']:.3f} | "
            f"{m['ms_per_query']:.1f} | {r['index_build_s']:.2f} | {r['add_1pct_s']:.2f} | "
            f"{r['new_items_found_at_1']:.2f} |")
  print(json.dumps(rows))
  return rows


if __name__ == "__main__":
  main()
