"""A quality report for a generated dataset, optionally against a reference set.

    python -m prm_jax.dataeval.report --generated=A.jsonl [--reference=B.jsonl] --out=DIR \\
        [--text_field=text] [--encoder=backbone|backbone:<preset>|minilm] [--test=T.jsonl]

writes DIR/report.md, DIR/report.json and PNG plots (DIR is replaced atomically). Sections:
lexical and semantic diversity (generated vs reference at a common sample size), distribution
match (MAUVE over several k-means seeds, Frechet distance, discriminator AUC), coverage and
bias (per task / category / difficulty, lengths, Gini of recurrences), duplicates and leakage
of `--test` items, and, for records with an MC field (OmegaPRM / Math-Shepherd), the label
quality of `labels`. Every number has a 95% interval (`stats`; fixed `--seed`).

Text of an item: the `--text_field` values (comma-separated names) joined; a list value (a
record's `steps`) is joined without separator. Lines that are not JSON objects or lack the text
field are reported with file and line number and skipped.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Optional, Sequence

import numpy as np

from mode_jax.atomic_io import atomic_directory, jsonl_records
from mode_jax.dataeval import coverage, distribution, lexical, overlap, semantic, stats
from prm_jax.dataeval import labels

NGRAM_ORDERS = (1, 2, 3, 4)


def text_of(rec: dict, fields: Sequence[str]) -> Optional[str]:
  parts = []
  for f in fields:
    v = rec.get(f)
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
      parts.append("".join(v))
    elif isinstance(v, (str, int, float)) and not isinstance(v, bool):
      parts.append(str(v))
    else:
      return None
  return "".join(parts)


def read_items(path: str, text_fields: Sequence[str], errors: list) -> list[dict]:
  """Items with their text under "_text"; bad lines go to `errors` as "file:line: why"."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no such file")
  bad: list = []
  items = []
  for n, rec in jsonl_records(path, bad):
    t = text_of(rec, text_fields)
    if t is None:
      bad.append({"line": n, "error": f"{path}:{n}: field(s) {','.join(text_fields)!r} "
                                      "missing or not text"})
      continue
    items.append(dict(rec, _text=t))
  errors.extend(e["error"] for e in sorted(bad, key=lambda e: e["line"]))
  return items


# ------------------------------------------------------------------------------ sections
def diversity(texts: Sequence[str], emb: Optional[np.ndarray], *, n_boot: int, seed: int) -> dict:
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
  out = {"mauve": distribution.mauve_seeds(ref_emb, gen_emb, seeds=range(seed, seed + mauve_seeds))}
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


def bias_and_coverage(gen: list[dict], ref: list[dict], args) -> dict:
  out = {"coverage": {}, "gini": {}}
  for name in ("task", "category", "difficulty"):
    field = getattr(args, f"{name}_field")
    g = _field_values(gen, field)
    if g is not None:
      r = _field_values(ref, field) if ref else None
      out["coverage"][name] = coverage.coverage([v for v in g if v is not None],
                                                None if r is None else [v for v in r if v is not None])
  for name in ("question", "answer", "task"):
    vals = [it.get(getattr(args, f"{name}_field")) for it in gen]
    vals = [json.dumps(v) if isinstance(v, (list, dict)) else v for v in vals if v is not None]
    if vals:
      out["gini"][name] = stats.gini_of_occurrences(vals, n_boot=args.n_boot, seed=args.seed)
      out["gini"][name]["distinct"] = len(set(vals))
  out["lengths"] = {"generated": coverage.lengths([it["_text"] for it in gen], n_boot=args.n_boot,
                                                  seed=args.seed)}
  if ref:
    out["lengths"]["reference"] = coverage.lengths([it["_text"] for it in ref],
                                                   n_boot=args.n_boot, seed=args.seed)
  return out


def _subsample(items: list, m: int, seed: int) -> list:
  if len(items) <= m:
    return list(items)
  idx = np.sort(np.random.default_rng(seed).choice(len(items), m, replace=False))
  return [items[i] for i in idx]


def build(gen: list[dict], ref: list[dict], test: list[dict], args, encoder=None,
          log=print) -> dict:
  """All numbers of the report (see module doc) as a JSON-able dict."""
  res: dict = {"generated": {"path": args.generated, "items": len(gen)},
               "reference": {"path": args.reference, "items": len(ref)} if ref else None,
               "seed": args.seed, "n_boot": args.n_boot}
  m = min([args.max_items, len(gen)] + ([len(ref)] if ref else []))
  gen_s, ref_s = _subsample(gen, m, args.seed), _subsample(ref, m, args.seed) if ref else []
  res["sample_size"] = m
  gen_emb = ref_emb = None
  if encoder is not None:
    log(f"embedding {len(gen_s)} + {len(ref_s)} texts with {encoder.name}")
    res["encoder"] = encoder.name
    gen_emb = encoder([it["_text"] for it in gen_s])
    ref_emb = encoder([it["_text"] for it in ref_s]) if ref_s else None
  log("diversity")
  hb = max(4, args.n_boot // 4)                  # set-level metrics are the costly ones
  res["diversity"] = {"generated": diversity([it["_text"] for it in gen_s], gen_emb,
                                             n_boot=hb, seed=args.seed)}
  if ref_s:
    res["diversity"]["reference"] = diversity([it["_text"] for it in ref_s], ref_emb,
                                              n_boot=hb, seed=args.seed)
    if gen_emb is not None:
      log("distribution match")
      res["distribution"] = distribution_match(
          gen_emb, ref_emb, [it["_text"] for it in gen_s], [it["_text"] for it in ref_s],
          n_boot=hb, seed=args.seed, mauve_seeds=args.mauve_seeds)
  log("coverage, duplicates, leakage")
  res["bias"] = bias_and_coverage(gen, ref, args)
  texts = [it["_text"] for it in gen]
  res["duplicates"] = {"exact": overlap.exact_duplicates(texts),
                       "near": overlap.near_duplicates(texts)}
  if test:
    train_q = [str(it.get(args.question_field, it["_text"])) for it in gen]
    res["leakage"] = overlap.leakage(sorted(set(train_q)), [t["_text"] for t in test],
                                     n=args.leak_n, n_boot=args.n_boot, seed=args.seed)
  exact = None if args.exact == "none" else labels.EXACT[args.exact]
  for key, items in (("labels", gen), ("labels_reference", ref)):
    if items and all(isinstance(it.get(args.mc_field), (int, float)) for it in items[:100]):
      log(f"process-supervision labels ({key})")
      res[key] = labels.label_quality(
          items, mc_field=args.mc_field, steps_field=args.steps_field,
          question_field=args.question_field, qid_field=args.qid_field, exact=exact,
          n_boot=args.n_boot, seed=args.seed)
  return res


def derive_fields(items: list[dict], args) -> None:
  """Arithmetic-environment questions get a "difficulty" (number of operations) when the
  items have none."""
  if args.exact != "arithmetic":
    return
  from prm_jax.envs import arithmetic
  for it in items:
    if args.difficulty_field not in it:
      p = arithmetic.parse_question(str(it.get(args.question_field, "")))
      if p is not None:
        it[args.difficulty_field] = f"{len(p.ops):02d} ops"


def parse_args(argv=None):
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--generated", required=True)
  ap.add_argument("--reference", default="")
  ap.add_argument("--test", default="", help="JSONL of test items for the leakage check")
  ap.add_argument("--out", required=True)
  ap.add_argument("--text_field", default="text")
  ap.add_argument("--reference_text_field", default="", help="default: --text_field")
  ap.add_argument("--test_text_field", default="question")
  ap.add_argument("--question_field", default="question")
  ap.add_argument("--qid_field", default="question_id")
  ap.add_argument("--answer_field", default="answer")
  ap.add_argument("--task_field", default="task")
  ap.add_argument("--category_field", default="category")
  ap.add_argument("--difficulty_field", default="difficulty")
  ap.add_argument("--mc_field", default="mc")
  ap.add_argument("--steps_field", default="steps")
  ap.add_argument("--exact", default="none", choices=["none"] + sorted(labels.EXACT),
                  help="exact prefix labels for label agreement")
  ap.add_argument("--encoder", default="backbone")
  ap.add_argument("--encoder_checkpoint", default="", help="HF-format dir for 'backbone'")
  ap.add_argument("--max_items", type=int, default=1500,
                  help="common sample size for the set-level metrics")
  ap.add_argument("--n_boot", type=int, default=200)
  ap.add_argument("--mauve_seeds", type=int, default=5)
  ap.add_argument("--leak_n", type=int, default=13)
  ap.add_argument("--seed", type=int, default=0)
  return ap.parse_args(argv)


def main(argv=None, log=print) -> dict:
  from mode_jax.dataeval import embed
  from prm_jax.dataeval import render
  args = parse_args(argv)
  errors: list = []
  gen = read_items(args.generated, args.text_field.split(","), errors)
  ref = read_items(args.reference, (args.reference_text_field or args.text_field).split(","),
                   errors) if args.reference else []
  test = read_items(args.test, args.test_text_field.split(","), errors) if args.test else []
  for e in errors[:20]:
    log(f"skipping input line: {e}")
  if not gen:
    raise SystemExit(f"{args.generated}: no usable items ({len(errors)} bad lines)")
  derive_fields(gen, args)
  derive_fields(ref, args)
  encoder = embed.get_encoder(args.encoder, checkpoint=args.encoder_checkpoint)
  res = build(gen, ref, test, args, encoder, log=log)
  res["input_errors"] = errors
  with atomic_directory(args.out) as tmp:
    render.write(res, tmp)
  log(f"wrote {os.path.join(args.out, 'report.md')}")
  return res


if __name__ == "__main__":
  main()
