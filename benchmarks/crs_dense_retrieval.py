"""Conversation -> items: RecLLM's dense retriever (`crs_jax.dual_encoder`) against the search
API, on held-out sessions whose users' acceptable items are known exactly.

    python -m benchmarks.crs_dense_retrieval [--size=200] [--train_sessions=3000]
        [--eval_sessions=300] [--checkpoint=runs/crs/base_model
         --vocab_kind=sentencepiece --vocab_path=runs/crs/crs_vocab.model]

Training pairs: (what the user said before the accepted item was shown, that item) from
teacher sessions with the rule simulator (`crs_jax.data.bootstrap`) on the catalogue; then
`--new_pct` % new items are added to the indexes (nothing retrained) and held-out teacher
sessions (other seeds) run on the grown catalogue. Each is scored against the session's whole
acceptable set (recall@10 capped at min(|acceptable|, 10), NDCG@10), and recall is also split
into the acceptable items added after training and the others (cold start). Rankers: the dual encoder on hashed word
1-2-gram features, on the backbone's mean-pooled states when `--checkpoint` is given (frozen:
a linear probe; and fine-tuned with LoRA, `--finetune_steps`), the
search API (attribute filters + BM25) on the raw conversation and on the query a perfect query
writer would send, and popularity.
"""

from __future__ import annotations

import json
import time

from absl import flags
import numpy as np

from benchmarks.crs_retrieval import perfect_query
from crs_jax import catalogue, data, dual_encoder, metrics, rule_simulator, search
from mode_jax import cli
from mode_jax.dataeval import embed
from crs_jax import session as session_lib
from crs_jax import text as text_lib

EVAL_SEED = 7777     # held-out sessions: per-session seeds hash (seed, id), disjoint from seed 0


def cached(features):
  memo: dict = {}

  def fn(texts):
    new = [t for t in dict.fromkeys(texts) if t not in memo]
    if new:
      memo.update(zip(new, features(new)))
    return np.stack([memo[t] for t in texts])
  return fn


def eval_rows(cat, n: int, seed: int) -> list:
  """(session, conversation) of held-out teacher sessions on `cat` that ended in an
  acceptance."""
  recs = session_lib.run_sessions(text_lib.TeacherRecommender(cat),
                                  rule_simulator.RuleSimulator(cat), cat, num_sessions=n,
                                  seed=seed)
  sessions = session_lib.sessions_from_records(recs, cat)
  return [(s, p[0]) for s in sessions for p in [dual_encoder.retrieval_pair(s)] if p]


def score(rows, rank, new_ids: frozenset) -> dict:
  """recall@10 / NDCG@10 against each session's acceptable set; recall restricted to the
  acceptable items added after training (`new_ids`) and to the others."""
  out = {"recall@10": [], "ndcg@10": [], "recall@10 new items": [], "recall@10 old items": []}
  for s, text in rows:
    top = rank(s, text)
    acc = s.judgement.acceptable
    out["recall@10"].append(metrics.recall_at_k(top, acc, 10))
    out["ndcg@10"].append(metrics.ndcg_at_k(top, acc, 10))
    for key, part in (("new", acc & new_ids), ("old", acc - new_ids)):
      if part:
        out[f"recall@10 {key} items"].append(metrics.recall_at_k(top, part, 10))
  res = {k: float(np.mean(v)) if v else float("nan") for k, v in out.items()}
  res["recall@10_se"] = float(np.std(out["recall@10"]) / np.sqrt(len(rows)))
  return res


def run(args) -> dict:
  cat = data.make_catalogue(args.size, 0)
  t0 = time.perf_counter()
  train = session_lib.sessions_from_records(
      data.bootstrap(args.size, 0, args.train_sessions, 0), cat)
  pairs = dual_encoder.training_pairs(train)
  new = catalogue.make_items(max(1, args.size * args.new_pct // 100), seed=9, start=args.size)
  ext = cat.extended(new)           # held-out sessions see items added after training
  new_ids = frozenset(it.id for it in new)
  rows = eval_rows(ext, args.eval_sessions, EVAL_SEED)
  out = {"items": args.size, "new_items": len(new), "train_pairs": len(pairs),
         "eval_sessions": len(rows), "data_s": time.perf_counter() - t0}
  items = {it.id: dual_encoder.item_text(it) for it in cat.items}
  features = {"dual encoder (hashed 1-2-grams)": embed.HashingEncoder(1024)}
  if args.checkpoint:
    features["dual encoder (backbone states)"] = embed.BackboneEncoder(
        args.checkpoint, vocab_kind=args.vocab_kind, vocab_path=args.vocab_path, max_len=256)
  encoders = {}
  for name, feat in features.items():
    t0 = time.perf_counter()
    encoders[name], losses = dual_encoder.train(cached(feat), pairs, items, steps=args.steps,
                                                dim=args.dim, temperature=args.temperature)
    out[name] = {"final_loss": losses[-1], "train_s": time.perf_counter() - t0}
  if args.checkpoint and args.finetune_steps:
    bb = features["dual encoder (backbone states)"]
    name = "dual encoder (backbone + LoRA, fine-tuned)"
    t0 = time.perf_counter()
    encoders[name], losses = dual_encoder.train_backbone(
        bb.cfg, bb.params, bb.vocab, pairs, items, steps=args.finetune_steps, dim=args.dim,
        temperature=args.temperature)
    out[name] = {"final_loss": losses[-1], "train_s": time.perf_counter() - t0}
  for name, enc in encoders.items():
    index = dual_encoder.DenseIndex(enc, cat.items)
    index.add(new)                  # embedded by the trained item tower, nothing retrained
    out[name].update(score(rows, lambda s, text: index.search(text, 10), new_ids))
  index = search.SearchIndex(ext.items)
  out["search API on the conversation"] = score(
      rows, lambda s, text: index.search(text, k=10), new_ids)
  out["search API, perfect query"] = score(
      rows, lambda s, text: index.search(perfect_query(s.goal), k=10), new_ids)
  popular = [it.id for it in catalogue.popularity_order(ext.items)[:10]]
  out["popularity"] = score(rows, lambda s, text: popular, new_ids)
  return out


def main(argv=None):
  p = flags.FlagValues()
  flags.DEFINE_integer("size", 200, "", flag_values=p)
  flags.DEFINE_integer("train_sessions", 3000, "", flag_values=p)
  flags.DEFINE_integer("eval_sessions", 600, "", flag_values=p)
  flags.DEFINE_integer("new_pct", 20, "items added after training, in %", flag_values=p)
  flags.DEFINE_integer("steps", 400, "", flag_values=p)
  flags.DEFINE_integer("dim", 64, "", flag_values=p)
  flags.DEFINE_float("temperature", 0.1, "", flag_values=p)
  flags.DEFINE_string("checkpoint", "", "", flag_values=p)
  flags.DEFINE_string("vocab_kind", "sentencepiece", "", flag_values=p)
  flags.DEFINE_string("vocab_path", "", "", flag_values=p)
  flags.DEFINE_integer("finetune_steps", 300, "LoRA fine-tuning of the backbone towers (0: skip); needs --checkpoint", flag_values=p)
  args = cli.parse_argv(p, argv)
  out = run(args)
  print(f"{out['items']} items + {out['new_items']} added after training, "
        f"{out['train_pairs']} training pairs, {out['eval_sessions']} held-out sessions")
  print("| ranker | recall@10 (+- s.e.) | NDCG@10 | recall@10, added items | "
        "recall@10, trained items |")
  print("|---|---|---|---|---|")
  for name, m in out.items():
    if isinstance(m, dict):
      print(f"| {name} | {m['recall@10']:.3f} +- {m['recall@10_se']:.3f} | {m['ndcg@10']:.3f} "
            f"| {m['recall@10 new items']:.3f} | {m['recall@10 old items']:.3f} |")
  print(json.dumps(out))
  return out


if __name__ == "__main__":
  main()
