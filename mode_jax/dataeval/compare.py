"""`compare_sets`: the dataset-quality comparison of a generated set against a reference set,
with every number's 95% interval (`stats`; fixed seed).

    res = compare_sets(gen_items, ref_items, test_items, Options(...), encoder=enc,
                       sections=(label_quality.section(...),))

Items are dicts whose text is under "_text" (`items.read_items`). Sections (generic):
lexical and semantic diversity of each set at a common sample size; distribution match (MAUVE
over several k-means seeds, Frechet distance, discriminator AUC) when an encoder is given;
coverage and bias (per task / category / difficulty field, lengths, Gini of recurrences);
exact and near-duplicates; leakage of `test` items into the generated set. Application
sections (`Section`: PRM label quality in `prm_jax.label_quality`, RecLLM's intents, goals and
popularity in `crs_jax.report`) add their own keys and markdown.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Callable, Optional, Sequence

import numpy as np

from mode_jax.dataeval import coverage, distribution, lexical, overlap, semantic, stats
from mode_jax.dataeval.items import subsample

NGRAM_ORDERS = (1, 2, 3, 4)


@dataclasses.dataclass(frozen=True)
class Options:
  """Field names and sample sizes of a comparison.

  Attributes:
    generated_path, reference_path: shown in the report.
    question_field, qid_field, answer_field, task_field, category_field, difficulty_field:
      item fields for coverage, recurrence (Gini) and leakage (absent fields are skipped).
    max_items: the common sample size of the set-level metrics (diversity, distribution).
    n_boot: resamples of the intervals; mauve_seeds: k-means seeds of MAUVE; leak_n: the word
      n-gram of the leakage check; seed: every random choice.
  """
  generated_path: str = ""
  reference_path: str = ""
  question_field: str = "question"
  qid_field: str = "question_id"
  answer_field: str = "answer"
  task_field: str = "task"
  category_field: str = "category"
  difficulty_field: str = "difficulty"
  max_items: int = 1500
  n_boot: int = 200
  mauve_seeds: int = 5
  leak_n: int = 13
  seed: int = 0


@dataclasses.dataclass(frozen=True)
class Section:
  """An application's part of the report.

  Attributes:
    name: a label (logs).
    compute: `fn(gen, ref, options, log) -> dict` merged into the result (its own keys).
    markdown: `fn(result) -> list of markdown lines` (empty when its keys are absent).
    prepare: `fn(items, options)` run on each set before anything is measured (e.g. derive a
      difficulty field).
    plot: `fn(result, save) -> None`, where `save(fig, file_name)` writes a figure.
  """
  name: str
  compute: Callable
  markdown: Callable
  prepare: Optional[Callable] = None
  plot: Optional[Callable] = None


def diversity(texts: Sequence[str], emb: Optional[np.ndarray], *, n_boot: int, seed: int) -> dict:
  """distinct-n and n-gram entropy (n = 1..4), self-BLEU-4 and, with embeddings, the Vendi
  score and mean cosine distance of `texts`, each with a half-sampling interval."""
  toks = [lexical.tokenize(t) for t in texts]
  n = len(toks)

  def half(f):
    return stats.half_sampling(f, n, n_boot=n_boot, seed=seed)
  out = {"items": n}
  for k in NGRAM_ORDERS:
    out[f"distinct_{k}"] = half(lambda i, k=k: lexical.distinct_n([toks[j] for j in i], k))
    out[f"entropy_{k}"] = half(lambda i, k=k: lexical.ngram_entropy([toks[j] for j in i], k))
  out["self_bleu_4"] = half(lambda i: lexical.self_bleu([toks[j] for j in i], 4))
  if emb is not None:
    out["vendi"] = half(lambda i: semantic.vendi_score(emb[i]))
    out["cosine_distance"] = half(lambda i: semantic.mean_cosine_distance(emb[i]))
  return out


def distribution_match(gen_emb, ref_emb, gen_texts, ref_texts, *, n_boot: int, seed: int,
                       mauve_seeds: int) -> dict:
  """MAUVE (mean / min / max over k-means seeds, and an interval over halves), Frechet
  distance and a discriminator's held-out AUC (folds grouped by normalised text) of the
  generated embeddings [n, d] against the reference's [m, d]."""
  out = {"mauve": distribution.mauve_seeds(ref_emb, gen_emb,
                                           seeds=range(seed, seed + mauve_seeds))}
  out["mauve_interval"] = stats.half_sampling2(
      lambda a, b: distribution.mauve_score(ref_emb[b], gen_emb[a], seed=seed)["mauve"],
      len(gen_emb), len(ref_emb), n_boot=max(2, n_boot // 3), seed=seed)
  out["frechet"] = stats.half_sampling2(
      lambda a, b: distribution.frechet_distance(ref_emb[b], gen_emb[a]),
      len(gen_emb), len(ref_emb), n_boot=n_boot, seed=seed)
  groups = [overlap.normalize(t) for t in list(ref_texts) + list(gen_texts)]
  out["discriminator_auc"] = distribution.discriminator_auc(ref_emb, gen_emb, groups=groups,
                                                            seed=seed, n_boot=n_boot * 4)
  return out


def _field_values(items, field):
  vals = [it.get(field) for it in items]
  return vals if any(v is not None for v in vals) else None


def bias_and_coverage(gen: list[dict], ref: list[dict], opts: Options) -> dict:
  """Coverage per task / category / difficulty value, Gini of the recurrence of questions,
  answers and tasks, and text lengths (words) of each set."""
  out = {"coverage": {}, "gini": {}}
  for name in ("task", "category", "difficulty"):
    field = getattr(opts, f"{name}_field")
    g = _field_values(gen, field)
    if g is not None:
      r = _field_values(ref, field) if ref else None
      out["coverage"][name] = coverage.coverage(
          [v for v in g if v is not None], None if r is None else [v for v in r if v is not None])
  for name in ("question", "answer", "task"):
    vals = [it.get(getattr(opts, f"{name}_field")) for it in gen]
    vals = [json.dumps(v) if isinstance(v, (list, dict)) else v for v in vals if v is not None]
    if vals:
      out["gini"][name] = stats.gini_of_occurrences(vals, n_boot=opts.n_boot, seed=opts.seed)
      out["gini"][name]["distinct"] = len(set(vals))
  out["lengths"] = {"generated": coverage.lengths([it["_text"] for it in gen],
                                                  n_boot=opts.n_boot, seed=opts.seed)}
  if ref:
    out["lengths"]["reference"] = coverage.lengths([it["_text"] for it in ref],
                                                   n_boot=opts.n_boot, seed=opts.seed)
  return out


def compare_sets(gen: list[dict], ref: Sequence[dict] = (), test: Sequence[dict] = (),
                 opts: Options = Options(), encoder: Optional[Callable] = None,
                 sections: Sequence[Section] = (), log: Callable = print) -> dict:
  """Every number of the report (see the module docstring) as a JSON-able dict.

  Args:
    gen, ref, test: items with "_text" (ref and test may be empty).
    encoder: texts -> [n, d] embeddings (with a `name`), or None (no semantic diversity or
      distribution match).
    sections: application sections; each adds its own keys.
  Returns:
    {"generated", "reference", "seed", "n_boot", "sample_size", "diversity", "distribution"
    (with an encoder and a reference), "bias", "duplicates", "leakage" (with test items), and
    the sections' keys}.
  """
  ref, test = list(ref), list(test)
  for s in sections:
    if s.prepare is not None:
      s.prepare(gen, opts)
      s.prepare(ref, opts)
  res: dict = {"generated": {"path": opts.generated_path, "items": len(gen)},
               "reference": ({"path": opts.reference_path, "items": len(ref)} if ref else None),
               "seed": opts.seed, "n_boot": opts.n_boot}
  m = min([opts.max_items, len(gen)] + ([len(ref)] if ref else []))
  gen_s = subsample(gen, m, opts.seed)
  ref_s = subsample(ref, m, opts.seed) if ref else []
  res["sample_size"] = m
  gen_emb = ref_emb = None
  if encoder is not None:
    log(f"embedding {len(gen_s)} + {len(ref_s)} texts with {getattr(encoder, 'name', 'encoder')}")
    res["encoder"] = getattr(encoder, "name", "encoder")
    gen_emb = np.asarray(encoder([it["_text"] for it in gen_s]))
    ref_emb = np.asarray(encoder([it["_text"] for it in ref_s])) if ref_s else None
  log("diversity")
  hb = max(4, opts.n_boot // 4)                  # set-level metrics are the costly ones
  res["diversity"] = {"generated": diversity([it["_text"] for it in gen_s], gen_emb,
                                             n_boot=hb, seed=opts.seed)}
  if ref_s:
    res["diversity"]["reference"] = diversity([it["_text"] for it in ref_s], ref_emb,
                                              n_boot=hb, seed=opts.seed)
    if gen_emb is not None:
      log("distribution match")
      res["distribution"] = distribution_match(
          gen_emb, ref_emb, [it["_text"] for it in gen_s], [it["_text"] for it in ref_s],
          n_boot=hb, seed=opts.seed, mauve_seeds=opts.mauve_seeds)
  log("coverage, duplicates, leakage")
  res["bias"] = bias_and_coverage(gen, ref, opts)
  texts = [it["_text"] for it in gen]
  res["duplicates"] = {"exact": overlap.exact_duplicates(texts),
                       "near": overlap.near_duplicates(texts)}
  if test:
    train_q = [str(it.get(opts.question_field, it["_text"])) for it in gen]
    res["leakage"] = overlap.leakage(sorted(set(train_q)), [t["_text"] for t in test],
                                     n=opts.leak_n, n_boot=opts.n_boot, seed=opts.seed)
  for s in sections:
    log(s.name)
    res.update(s.compute(gen, ref, opts, log) or {})
  return res
