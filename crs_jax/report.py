"""The quality report on simulated conversations ("Evaluation of Synthetic Datasets for
Conversational Recommender Systems", arXiv 2212.08167: judge generated conversations as a
dataset, for quality, diversity and bias): `mode_jax.dataeval.compare_sets` over conversation
transcripts with RecLLM's own section.

    rep = conversation_report(generated, reference, catalogue, train=bootstrap, encoder=enc)

`generated` / `reference` / `train` are session records (`crs_jax.session`). The generic
measures (each with a 95% interval; definitions in `mode_jax.dataeval`) are computed on
transcripts: lexical and semantic diversity (distinct-n, self-BLEU-4, Vendi), distribution match
(MAUVE over k-means seeds, Frechet distance, a discriminator's held-out AUC: 0.5 is
indistinguishable, RecLLM's own realism test), exact and near-duplicates. The section
"conversations" adds, per set: user-utterance diversity (distinct-1/2, self-BLEU-4), goal
coverage (share of each user's goal values it mentioned), popularity bias of recommended items
(Gini, long-tail share) and duplicate conversations; intent coverage (share per intent,
reference intents never generated); and leakage of `train` conversations into the generated
ones (exact, shared word 13-grams).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from crs_jax import catalogue as catalogue_lib
from crs_jax import goals as goals_lib
from crs_jax import metrics, nlu
from mode_jax.dataeval import compare, coverage, lexical, overlap, stats


def user_texts(records: Sequence[dict]) -> list[str]:
  """Every user utterance of the sessions, in order."""
  return [t["text"] for r in records for t in r["turns"] if t["role"] == "user"]


def transcript(rec: dict) -> str:
  """A session as text: one "U: ..." / "S: ..." line per turn."""
  return "\n".join(("U: " if t["role"] == "user" else "S: ") + t["text"] for t in rec["turns"])


def goal_coverage(records: Sequence[dict], schema=None) -> float:
  """Mean over sessions of the share of the goal's values the user mentioned."""
  shares = []
  for r in records:
    g = goals_lib.Goal.from_json(r["goal"])
    values = g.held_values() | g.disliked_values()
    said = set()
    for t in r["turns"]:
      if t["role"] == "user":
        said |= {(m.attr, m.value) for m in nlu.mentions(t["text"], schema)}
    shares.append(len(values & said) / len(values) if values else 1.0)
  return float(np.mean(shares)) if shares else float("nan")


def _lexical(texts: Sequence[str], limit: int, seed: int) -> dict:
  rng = np.random.default_rng(seed)
  if len(texts) > limit:
    texts = [texts[i] for i in sorted(rng.choice(len(texts), limit, replace=False))]
  tok = [lexical.tokenize(t) for t in texts]
  return {"distinct_1": lexical.distinct_n(tok, 1), "distinct_2": lexical.distinct_n(tok, 2),
          "self_bleu": lexical.self_bleu(tok)}


def set_report(records, cat, limit: int, seed: int) -> dict:
  """The per-set numbers of the "conversations" section (see the module docstring)."""
  out = {"sessions": len(records), "user_turns": len(user_texts(records))}
  out.update(_lexical(user_texts(records), limit, seed))
  out["goal_coverage"] = goal_coverage(records, cat.schema)
  out.update(metrics.popularity_bias(records, cat))
  out["duplicates"] = overlap.exact_duplicates([transcript(r) for r in records])
  out["near_duplicates"] = overlap.near_duplicates([transcript(r) for r in records])
  return out


def _intents(records) -> list[str]:
  return [t["intent"] for r in records for t in r["turns"] if t["role"] == "user"]


def section(cat: catalogue_lib.Catalogue, train: Sequence[dict] = (),
            lexical_limit: int = 1000) -> compare.Section:
  """RecLLM's section of `compare_sets` (items carry their session record under "record")."""
  def compute(gen, ref, opts, log):
    g, r = [it["record"] for it in gen], [it["record"] for it in ref]
    out = {"generated": set_report(g, cat, lexical_limit, opts.seed),
           "reference": set_report(r, cat, lexical_limit, opts.seed),
           "intent_coverage": coverage.coverage(_intents(g), _intents(r))}
    if train:
      out["leakage"] = overlap.leakage([transcript(x) for x in train],
                                       [transcript(x) for x in g])
    return {"conversations": out}
  return compare.Section(name="conversations", compute=compute,
                         markdown=lambda res: ["", "## Conversations", "", markdown(res)])


def conversation_report(generated: Sequence[dict], reference: Sequence[dict],
                        cat: catalogue_lib.Catalogue, *, train: Sequence[dict] = (),
                        encoder: Optional[Callable] = None, lexical_limit: int = 1000,
                        seed: int = 0, n_boot: int = 20, names=("generated", "reference"),
                        log: Callable = lambda *a: None) -> dict:
  """`compare_sets` of the two session sets' transcripts with the "conversations" section.

  Returns:
    The `compare_sets` result: "diversity", "distribution" (with an encoder: "mauve",
    "discriminator_auc", "frechet"), "duplicates", ... and "conversations" ({"generated",
    "reference", "intent_coverage", "leakage"}).
  """
  items = lambda recs: [{"_text": transcript(r), "record": r} for r in recs]
  opts = compare.Options(generated_path=names[0], reference_path=names[1], n_boot=n_boot,
                         seed=seed, max_items=max(len(generated), len(reference)))
  return compare.compare_sets(items(generated), items(reference), (), opts, encoder,
                              (section(cat, train, lexical_limit),), log=log)


def _v(x) -> str:
  if isinstance(x, dict) and "value" in x:
    return stats.fmt(x)
  return f"{x:.3f}" if isinstance(x, float) else str(x)


def markdown(rep: dict, gen_name: str = "generated", ref_name: str = "reference") -> str:
  """The compact table of a `conversation_report`: the per-set measures, intent shares, MAUVE
  and the discriminator AUC, leakage."""
  conv = rep["conversations"]
  keys = ("sessions", "user_turns", "distinct_1", "distinct_2", "self_bleu", "goal_coverage",
          "gini", "long_tail_share")
  lines = [f"| measure | {gen_name} | {ref_name} |", "|---|---|---|"]
  for k in keys:
    if k in conv["generated"]:
      lines.append(f"| {k} | {_v(conv['generated'][k])} | {_v(conv['reference'][k])} |")
  div = rep["diversity"]
  if "vendi" in div["generated"]:
    lines.append(f"| vendi (transcripts) | {_v(div['generated']['vendi'])} | "
                 f"{_v(div['reference']['vendi'])} |")
  for k, field in (("duplicates", "duplicate_share"),
                   ("near_duplicates", "share_with_near_duplicate")):
    lines.append(f"| {k} (share) | {_v(conv['generated'][k][field])} | "
                 f"{_v(conv['reference'][k][field])} |")
  cov = conv["intent_coverage"]
  lines.append("")
  lines.append("| intent | " + gen_name + " share | " + ref_name + " share |")
  lines.append("|---|---|---|")
  for row in cov["rows"]:
    lines.append(f"| {row['value']} | {row['generated_share']:.3f} | "
                 f"{row['reference_share']:.3f} |")
  if "distribution" in rep:
    d = rep["distribution"]
    m = d["mauve"]
    lines.append(f"\nMAUVE {m['mean']:.3f} (seeds {m['min']:.3f}-{m['max']:.3f}); "
                 f"discriminator AUC {_v(d['discriminator_auc'])} (0.5: indistinguishable)")
  if "leakage" in conv:
    lk = conv["leakage"]
    lines.append(f"Leakage of bootstrap conversations: exact {_v(lk['exact'])}, "
                 f"13-gram {_v(lk['ngram'])}")
  return "\n".join(lines)
