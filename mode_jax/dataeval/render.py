"""report.md, report.json and the PNG plots of a `compare.compare_sets` result."""

from __future__ import annotations

import json
import os
from typing import Sequence

import numpy as np

from mode_jax.atomic_io import atomic_file, write_json_atomic
from mode_jax.dataeval.stats import fmt

DIVERSITY_ROWS = (("distinct_1", "distinct-1"), ("distinct_2", "distinct-2"),
                  ("distinct_3", "distinct-3"), ("distinct_4", "distinct-4"),
                  ("entropy_2", "2-gram entropy (bits)"), ("self_bleu_4", "self-BLEU-4"),
                  ("vendi", "Vendi score"), ("cosine_distance", "mean cosine distance"))


def table(header, rows) -> list[str]:
  """Markdown table lines."""
  return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + [
      "| " + " | ".join(str(c) for c in r) + " |" for r in rows]


def markdown(res: dict, sections: Sequence = ()) -> str:
  """The report's markdown: the generic sections, then each application section's."""
  g, r = res["generated"], res.get("reference")
  md = ["# Dataset quality report", "",
        f"- generated: `{g['path']}` ({g['items']} items)"]
  if r:
    md.append(f"- reference: `{r['path']}` ({r['items']} items)")
  md += [f"- set-level metrics on {res['sample_size']} items per set (seeded subsample); "
         f"95% intervals; seed {res['seed']}",
         f"- encoder: {res.get('encoder', 'none')}"]
  if res.get("input_errors"):
    md.append(f"- skipped input lines: {len(res['input_errors'])} (first: "
              f"{res['input_errors'][0]})")
  div = res["diversity"]
  md += ["", "## Diversity", ""]
  sets = [k for k in ("generated", "reference") if k in div]
  md += table(["metric"] + sets, [[name] + [fmt(div[s].get(key)) for s in sets]
                                   for key, name in DIVERSITY_ROWS if key in div["generated"]])
  if "distribution" in res:
    d = res["distribution"]
    mv = d["mauve"]
    md += ["", "## Distribution match (generated vs reference)", ""]
    md += table(["metric", "value", "note"], [
        ["MAUVE", f"{mv['mean']:.3f} (seeds {mv['min']:.3f}-{mv['max']:.3f})",
         f"interval over halves {fmt(d['mauve_interval'])}; {mv['num_buckets']} clusters; "
         "1 = same distribution"],
        ["Frechet distance", fmt(d["frechet"]), "0 = same mean and covariance"],
        ["discriminator AUC", fmt(d["discriminator_auc"]), "0.5 = indistinguishable"]])
  b = res["bias"]
  md += ["", "## Coverage and bias", ""]
  ln = b["lengths"]
  md += table(["length (words)", "mean", "median", "p10", "p90"],
               [[k, fmt(v["mean"], 1), v["median"], v["p10"], v["p90"]] for k, v in ln.items()])
  if b["gini"]:
    md += [""] + table(["recurrence of", "distinct", "Gini"],
                        [[k, v["distinct"], fmt(v)] for k, v in b["gini"].items()])
  for name, cov in b["coverage"].items():
    rows = [[c["value"], c["generated"], f"{100 * c['generated_share']:.1f}%",
             c["reference"], f"{100 * c['reference_share']:.1f}%"] for c in cov["rows"][:30]]
    md += ["", f"Coverage by {name} ({cov['distinct']} values"
           + (f"; {len(cov['rows']) - 30} more in report.json" if len(cov["rows"]) > 30 else "")
           + ")", ""]
    md += table([name, "generated", "share", "reference", "share"], rows)
    if cov["uncovered_reference_values"]:
      md.append(f"\nReference {name} values never generated: "
                f"{', '.join(cov['uncovered_reference_values'][:20])}")
  dup = res["duplicates"]
  md += ["", "## Duplicates and leakage", "",
         f"- exact duplicates: {100 * dup['exact']['duplicate_share']:.1f}% of "
         f"{dup['exact']['n']} texts ({dup['exact']['distinct']} distinct)",
         f"- near-duplicates (Jaccard of word 3-grams >= {dup['near']['threshold']}): "
         f"{100 * dup['near']['share_with_near_duplicate']:.1f}% of texts, "
         f"{dup['near']['clusters']} clusters, largest {dup['near']['largest_cluster']}"]
  if "leakage" in res:
    lk = res["leakage"]
    md.append(f"- leakage of {lk['test_items']} test items: exact {fmt(lk['exact'])}, "
              f"shared word {lk['n']}-gram {fmt(lk['ngram'])}")
  for section in sections:
    md += section.markdown(res)
  md += ["", "Plots: " + ", ".join(f"`{p}`" for p in res.get("plots", []))]
  return "\n".join(md) + "\n"


def plots(res: dict, out: str, sections: Sequence = ()) -> list[str]:
  """Writes the PNG plots (lengths, diversity, the MAUVE frontier, the sections') into `out`;
  returns their file names."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  made = []

  def save(fig, name):
    fig.tight_layout()
    fig.savefig(os.path.join(out, name), dpi=110)
    plt.close(fig)
    made.append(name)

  ln = res["bias"]["lengths"]
  fig, ax = plt.subplots(figsize=(6, 3.5))
  for k, v in ln.items():
    if v["values"]:
      ax.hist(v["values"], bins=40, alpha=0.5, density=True, label=k)
  ax.set_xlabel("length (words)")
  ax.set_ylabel("density")
  ax.legend()
  save(fig, "lengths.png")

  div = res["diversity"]
  sets = [k for k in ("generated", "reference") if k in div]
  keys = [k for k, _ in DIVERSITY_ROWS if k in div["generated"] and "entropy" not in k
          and k != "vendi"]
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), gridspec_kw={"width_ratios": [4, 1]})
  w = 0.8 / len(sets)
  for j, s in enumerate(sets):
    vals = [div[s][k]["value"] for k in keys]
    err = [[max(0, div[s][k]["value"] - div[s][k]["lo"]) if np.isfinite(div[s][k]["lo"]) else 0
            for k in keys],
           [max(0, div[s][k]["hi"] - div[s][k]["value"]) if np.isfinite(div[s][k]["hi"]) else 0
            for k in keys]]
    axes[0].bar(np.arange(len(keys)) + j * w, vals, w, yerr=err, label=s)
    if "vendi" in div[s]:
      axes[1].bar([j], [div[s]["vendi"]["value"]], 0.6, label=s)
  axes[0].set_xticks(np.arange(len(keys)) + w * (len(sets) - 1) / 2)
  axes[0].set_xticklabels([dict(DIVERSITY_ROWS)[k] for k in keys], rotation=30, ha="right",
                          fontsize=8)
  axes[0].legend(fontsize=8)
  axes[1].set_xticks(range(len(sets)))
  axes[1].set_xticklabels(sets, fontsize=8)
  axes[1].set_title("Vendi score", fontsize=9)
  save(fig, "diversity.png")

  if "distribution" in res:
    curve = np.asarray(res["distribution"]["mauve"]["curve"])
    fig, ax = plt.subplots(figsize=(4, 4))
    if len(curve):
      ax.plot(curve[:, 0], curve[:, 1], marker=".")
    ax.set_xlabel("exp(-c KL(Q | R))  (generated)")
    ax.set_ylabel("exp(-c KL(P | R))  (reference)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_title(f"divergence frontier, MAUVE {res['distribution']['mauve']['mean']:.3f}",
                 fontsize=9)
    save(fig, "frontier.png")

  for section in sections:
    if section.plot is not None:
      section.plot(res, save)
  return made


def write(res: dict, out: str, sections: Sequence = ()) -> None:
  """Writes report.md, report.json and the plots of a `compare_sets` result into `out`."""
  res["plots"] = plots(res, out, sections)
  slim = json.loads(json.dumps(res, default=float))
  for v in slim["bias"]["lengths"].values():
    v.pop("values", None)
  write_json_atomic(os.path.join(out, "report.json"), slim)
  with atomic_file(os.path.join(out, "report.md")) as f:
    f.write(markdown(res, sections))
