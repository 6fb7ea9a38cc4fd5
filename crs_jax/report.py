"""The quality report on simulated conversations ("Evaluation of Synthetic Datasets for
Conversational Recommender Systems", arXiv 2212.08167: judge generated conversations as a
dataset, for quality, diversity and bias), with the measures of `mode_jax.dataeval`.

    rep = conversation_report(generated, reference, catalogue, train=bootstrap, encoder=enc)

`generated` / `reference` / `train` are session records (`crs_jax.session`). Reported, each
with its definition in the module that computes it:

- lexical diversity of user utterances: distinct-1/2, self-BLEU-4 (lower: more diverse);
- semantic diversity: Vendi score of conversation embeddings (`encoder`: texts -> [n, d]);
- distribution match of generated vs reference conversations: MAUVE (5 k-means seeds) and a
  discriminator's held-out AUC (0.5: indistinguishable; RecLLM's own realism test), folds
  grouped by session;
- intent coverage (share per intent, reference intents never generated) and goal coverage (share
  of each user's goal values it mentioned);
- popularity bias of recommended items: Gini, long-tail share;
- exact and near-duplicate conversations (MinHash, Jaccard >= 0.8), and leakage of `train`
  conversations into the generated ones (exact, shared word 13-grams).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from crs_jax import catalogue as catalogue_lib
from crs_jax import goals as goals_lib
from crs_jax import metrics, nlu
from mode_jax.dataeval import coverage, distribution, lexical, overlap, semantic, stats


def hashing_encoder(dim: int = 512) -> Callable:
  """Texts -> l2-normalised hashed word 1-2-gram counts (scikit-learn's HashingVectorizer): a
  lexical embedding for templated dialogue, no model needed."""
  from sklearn.feature_extraction.text import HashingVectorizer
  vec = HashingVectorizer(n_features=dim, ngram_range=(1, 2), alternate_sign=False)
  return lambda texts: vec.transform(list(texts)).toarray().astype(np.float32)


def user_texts(records: Sequence[dict]) -> list[str]:
  return [t["text"] for r in records for t in r["turns"] if t["role"] == "user"]


def transcript(rec: dict) -> str:
  return "\n".join(("U: " if t["role"] == "user" else "S: ") + t["text"] for t in rec["turns"])


def goal_coverage(records: Sequence[dict]) -> float:
  """Mean over sessions of the share of the goal's values the user mentioned."""
  shares = []
  for r in records:
    g = goals_lib.Goal.from_json(r["goal"])
    values = g.held_values() | g.disliked_values()
    said = set()
    for t in r["turns"]:
      if t["role"] == "user":
        said |= {(m.attr, m.value) for m in nlu.mentions(t["text"])}
    shares.append(len(values & said) / len(values) if values else 1.0)
  return float(np.mean(shares)) if shares else float("nan")


def _lexical(texts: Sequence[str], limit: int, seed: int) -> dict:
  rng = np.random.default_rng(seed)
  if len(texts) > limit:
    texts = [texts[i] for i in sorted(rng.choice(len(texts), limit, replace=False))]
  tok = [lexical.tokenize(t) for t in texts]
  return {"distinct_1": lexical.distinct_n(tok, 1), "distinct_2": lexical.distinct_n(tok, 2),
          "self_bleu": lexical.self_bleu(tok)}


def set_report(records, cat, encoder: Optional[Callable], limit: int, seed: int) -> dict:
  out = {"sessions": len(records), "user_turns": len(user_texts(records))}
  out.update(_lexical(user_texts(records), limit, seed))
  if encoder is not None and len(records) > 1:
    out["vendi"] = semantic.vendi_score(encoder([transcript(r) for r in records]))
  out["intents"] = [t["intent"] for r in records for t in r["turns"] if t["role"] == "user"]
  out["goal_coverage"] = goal_coverage(records)
  out.update(metrics.popularity_bias(records, cat))
  out["duplicates"] = overlap.exact_duplicates([transcript(r) for r in records])
  out["near_duplicates"] = overlap.near_duplicates([transcript(r) for r in records])
  return out


def conversation_report(generated: Sequence[dict], reference: Sequence[dict],
                        cat: catalogue_lib.Catalogue, *, train: Sequence[dict] = (),
                        encoder: Optional[Callable] = None, lexical_limit: int = 1000,
                        seed: int = 0) -> dict:
  gen = set_report(generated, cat, encoder, lexical_limit, seed)
  ref = set_report(reference, cat, encoder, lexical_limit, seed)
  rep = {"generated": gen, "reference": ref,
         "intent_coverage": coverage.coverage(gen.pop("intents"), ref.pop("intents"))}
  if encoder is not None:
    p = encoder([transcript(r) for r in generated])
    q = encoder([transcript(r) for r in reference])
    rep["mauve"] = distribution.mauve_seeds(p, q)
    rep["discriminator_auc"] = distribution.discriminator_auc(p, q, seed=seed)
  if train:
    rep["leakage"] = overlap.leakage([transcript(r) for r in train],
                                     [transcript(r) for r in generated])
  return rep


def _v(x) -> str:
  if isinstance(x, dict) and "value" in x:
    return stats.fmt(x)
  return f"{x:.3f}" if isinstance(x, float) else str(x)


def markdown(rep: dict, gen_name: str = "generated", ref_name: str = "reference") -> str:
  keys = ("sessions", "user_turns", "distinct_1", "distinct_2", "self_bleu", "vendi",
          "goal_coverage", "gini", "long_tail_share")
  lines = [f"| measure | {gen_name} | {ref_name} |", "|---|---|---|"]
  for k in keys:
    if k in rep["generated"]:
      lines.append(f"| {k} | {_v(rep['generated'][k])} | {_v(rep['reference'][k])} |")
  for k, field in (("duplicates", "duplicate_share"),
                   ("near_duplicates", "share_with_near_duplicate")):
    lines.append(f"| {k} (share) | {_v(rep['generated'][k][field])} | "
                 f"{_v(rep['reference'][k][field])} |")
  cov = rep["intent_coverage"]
  lines.append("")
  lines.append("| intent | " + gen_name + " share | " + ref_name + " share |")
  lines.append("|---|---|---|")
  for row in cov["rows"]:
    lines.append(f"| {row['value']} | {row['generated_share']:.3f} | "
                 f"{row['reference_share']:.3f} |")
  if "mauve" in rep:
    m = rep["mauve"]
    lines.append(f"\nMAUVE {m['mean']:.3f} (seeds {m['min']:.3f}-{m['max']:.3f}); "
                 f"discriminator AUC {_v(rep['discriminator_auc'])} (0.5: indistinguishable)")
  if "leakage" in rep:
    lk = rep["leakage"]
    lines.append(f"Leakage of bootstrap conversations: exact {_v(lk['exact'])}, "
                 f"13-gram {_v(lk['ngram'])}")
  return "\n".join(lines)
