"""Quality of process-supervision labels (OmegaPRM / Math-Shepherd records, `omegaprm.tree`).

A record labels one solution prefix (its `steps`) with MC, the fraction of the policy's
rollouts from that prefix that reached the right answer (graded complete solutions: 1 or 0);
the hard label is 1[MC > threshold] (threshold 0 as in the paper). Intervals are cluster
bootstraps over questions (records of one question share prefixes and rollouts).

- MC distribution: histogram, shares of MC = 0, MC = 1 and 0 < MC < 1.
- balance: the positive share overall and per step position (number of steps in the prefix);
  OmegaPRM's binary search is meant to give balanced positives and negatives.
- agreement with exact labels, where an `exact` checker knows whether a prefix is right (the
  arithmetic environment does): accuracy of the hard label, false-positive rate
  P(label 1 | prefix wrong), false-negative rate P(label 0 | prefix right), AUROC of MC
  against the exact label, and the false-discovery rate P(prefix wrong | label 1); split into
  graded complete solutions and rollout-labelled prefixes when records say which (`terminal`):
  a complete solution with the right answer after a wrong step is a false positive too.
- estimated error rates without exact labels: for a right prefix with value v, k rollouts all
  fail with probability (1 - v)^k, so the mean of (1 - MC)^k over positive rollout-labelled
  records is a plug-in estimate of the false-negative rate (it treats positives as right and
  MC as v); the share of positives supported by one rollout (MC = 1/k) flags the
  likeliest false positives (a wrong prefix whose rollout recovered).
- conflicts: the same (question, prefix) labelled both 1 and 0.
- occurrences: the search shares identical prefixes of a question as one state, so a correct
  prefix that many solutions pass through becomes one record while wrong prefixes (which
  rarely repeat) stay distinct. Records carry `occurrences` (how many labelled points each
  stands for; 1 when absent); when any exceeds 1 the report adds the shares above weighted by
  occurrences (`*_by_occurrence`: what the labels look like before de-duplication, and what a
  PRM trained with `weighting="occurrences"` sees).
"""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import numpy as np

from mode_jax.dataeval import compare, render, stats
from mode_jax.dataeval.stats import fmt
from prm_jax.envs import arithmetic
from prm_jax.envs.judges import EXACT, REPORT_CHECKS
from prm_jax.prm.data import record_weight
from prm_jax.prm.metrics import auroc

MC_BINS = (0.0, 1e-9, 0.25, 0.5, 0.75, 1.0 - 1e-9, 1.0 + 1e-9)
MC_BIN_NAMES = ("0", "(0, .25)", "[.25, .5)", "[.5, .75)", "[.75, 1)", "1")




def label_quality(records: Sequence[dict], *, mc_field: str = "mc", steps_field: str = "steps",
                  question_field: str = "question", qid_field: str = "question_id",
                  rollouts_field: str = "rollouts", occurrences_field: str = "occurrences",
                  threshold: float = 0.0,
                  exact: Optional[Callable[[dict], Optional[int]]] = None,
                  n_boot: int = 200, seed: int = 0) -> dict:
  """The label-quality numbers of process-supervision records (module docstring): MC
  distribution, balance by step position, occurrences, estimated error rates, conflicts and,
  with `exact`, agreement with exact labels; intervals are cluster bootstraps over questions."""
  n = len(records)
  if n == 0:
    raise ValueError("label_quality: no records")
  for i, r in enumerate(records):
    if not isinstance(r.get(mc_field), (int, float)) or not isinstance(r.get(steps_field), list):
      raise ValueError(f"record {i}: field {mc_field!r} (number) or {steps_field!r} (list) "
                       "missing")
  mc = np.array([float(r[mc_field]) for r in records])
  hard = (mc > threshold).astype(int)
  pos = np.array([len(r[steps_field]) for r in records])
  groups = [str(r.get(qid_field) or r.get(question_field)) for r in records]
  k = np.array([int(r.get(rollouts_field) or 0) for r in records])
  w = np.array([record_weight({"occurrences": r.get(occurrences_field, 1)}, f"record {i}")
                for i, r in enumerate(records)], float)
  boot = dict(groups=groups, n_boot=n_boot, seed=seed)

  def rate(mask_fn):
    return lambda idx: float(mask_fn(idx).mean()) if len(idx) else float("nan")

  def weighted(mask_fn):
    return lambda idx: (float(np.sum(w[idx] * mask_fn(idx)) / np.sum(w[idx])) if len(idx)
                        else float("nan"))

  out = {"records": n, "questions": len(set(groups)), "threshold": threshold,
         "mc_histogram": dict(zip(MC_BIN_NAMES, np.histogram(mc, MC_BINS)[0].tolist())),
         "mc_zero": stats.bootstrap(rate(lambda i: mc[i] == 0), n, **boot),
         "mc_one": stats.bootstrap(rate(lambda i: mc[i] == 1), n, **boot),
         "mc_between": stats.bootstrap(rate(lambda i: (mc[i] > 0) & (mc[i] < 1)), n, **boot),
         "positive": stats.bootstrap(rate(lambda i: hard[i] == 1), n, **boot)}
  if (w > 1).any():
    out["occurrences"] = int(w.sum())
    out["positive_by_occurrence"] = stats.bootstrap(weighted(lambda i: hard[i] == 1), n, **boot)
    out["mc_zero_by_occurrence"] = stats.bootstrap(weighted(lambda i: mc[i] == 0), n, **boot)
  out["by_position"] = {}
  for p in sorted(set(pos.tolist())):
    sel = np.flatnonzero(pos == p)
    out["by_position"][int(p)] = {
        "records": int(len(sel)), "mean_mc": float(mc[sel].mean()),
        "positive": stats.bootstrap(lambda idx, s=sel: float(hard[s[idx]].mean()), len(sel),
                                    groups=[groups[j] for j in sel], n_boot=n_boot, seed=seed)}
  rolled = np.flatnonzero((k > 0) & (hard == 1))
  if len(rolled):
    fn_plug = (1.0 - mc[rolled]) ** k[rolled]
    single = mc[rolled] <= 1.0 / k[rolled] + 1e-9
    out["estimated_fn"] = stats.bootstrap(lambda idx: float(fn_plug[idx].mean()), len(rolled),
                                          groups=[groups[j] for j in rolled], n_boot=n_boot,
                                          seed=seed)
    out["single_rollout_positives"] = stats.bootstrap(
        lambda idx: float(single[idx].mean()), len(rolled), groups=[groups[j] for j in rolled],
        n_boot=n_boot, seed=seed)
  seen: dict = {}
  for g, r, h in zip(groups, records, hard):
    seen.setdefault((g, "".join(r[steps_field])), set()).add(int(h))
  out["duplicate_prefixes"] = n - len(seen)
  out["conflicting_prefixes"] = sum(len(v) > 1 for v in seen.values())
  if exact is not None:
    out["exact"] = _agreement(records, exact, mc, hard, groups, n_boot, seed, w)
  return out


def _agreement(records, exact, mc, hard, groups, n_boot, seed, weight) -> Optional[dict]:
  ex = [exact(r) for r in records]
  known = np.array([e is not None for e in ex])
  if not known.any():
    return None
  idx_known = np.flatnonzero(known)
  y = np.array([ex[i] for i in idx_known])
  h, m = hard[idx_known], mc[idx_known]
  g = [groups[i] for i in idx_known]
  boot = dict(groups=g, n_boot=n_boot, seed=seed)

  def cond_rate(label_value, truth):
    def f(idx):
      sel = y[idx] == truth
      return float((h[idx][sel] == label_value).mean()) if sel.any() else float("nan")
    return f
  def false_discovery(idx):
    sel = h[idx] == 1
    return float((y[idx][sel] == 0).mean()) if sel.any() else float("nan")
  out = {"records": int(len(idx_known)), "right_share": float(y.mean()),
         "accuracy": stats.bootstrap(lambda i: float((h[i] == y[i]).mean()), len(y), **boot),
         "false_positive": stats.bootstrap(cond_rate(1, 0), len(y), **boot),
         "false_negative": stats.bootstrap(cond_rate(0, 1), len(y), **boot),
         "false_discovery": stats.bootstrap(false_discovery, len(y), **boot),
         "auroc_mc": stats.bootstrap(lambda i: auroc(m[i], y[i]), len(y), **boot)}
  wk = weight[idx_known]
  if (wk > 1).any():
    def wmean(values, sel):
      return lambda i: (float(np.sum(wk[i] * values[i] * sel[i]) / np.sum(wk[i] * sel[i]))
                        if np.sum(wk[i] * sel[i]) else float("nan"))
    every = np.ones(len(y), bool)
    out["right_share_by_occurrence"] = float(np.sum(wk * y) / np.sum(wk))
    out["accuracy_by_occurrence"] = stats.bootstrap(wmean(h == y, every), len(y), **boot)
    out["false_discovery_by_occurrence"] = stats.bootstrap(wmean(y == 0, h == 1), len(y),
                                                           **boot)
  term = np.array([records[i].get("terminal") for i in idx_known])
  # The recover ratio the likelihood-ratio decision rule assumes (`omegaprm.decision`): mean MC
  # of wrong prefixes over that of right ones, on rollout prefixes (not graded solutions).
  rolled = np.array([records[i].get("terminal") is not True for i in idx_known])

  def recover(idx):
    idx = idx[rolled[idx]]
    right, wrong = m[idx][y[idx] == 1], m[idx][y[idx] == 0]
    return float(wrong.mean() / right.mean()) if len(right) and len(wrong) and right.mean() > 0 \
        else float("nan")
  out["recover_ratio"] = stats.bootstrap(recover, len(y), **boot)
  if all(t in (True, False) for t in term):
    out["by_source"] = {}
    for name, want in (("complete solutions (graded)", True), ("prefixes (rollout MC)", False)):
      sel = np.flatnonzero(term == want)
      if len(sel):
        sub = dict(groups=[g[j] for j in sel], n_boot=n_boot, seed=seed)
        out["by_source"][name] = {
            "records": int(len(sel)), "right_share": float(y[sel].mean()),
            "false_positive": stats.bootstrap(lambda i, s=sel: cond_rate(1, 0)(s[i]), len(sel),
                                              **sub),
            "false_discovery": stats.bootstrap(lambda i, s=sel: false_discovery(s[i]),
                                               len(sel), **sub)}
  return out


def label_markdown(lab: dict, title: str) -> str:
  """The markdown of one `label_quality` result."""
  md = [f"## Process-supervision labels ({title})", "",
        f"{lab['records']} records over {lab['questions']} questions; hard label = "
        f"1[MC > {lab['threshold']}]. {lab['duplicate_prefixes']} duplicate prefixes, "
        f"{lab['conflicting_prefixes']} labelled both ways.", ""]
  rows = [["MC = 0", fmt(lab["mc_zero"])], ["0 < MC < 1", fmt(lab["mc_between"])],
          ["MC = 1", fmt(lab["mc_one"])], ["positive (hard label 1)", fmt(lab["positive"])]]
  if "occurrences" in lab:
    rows += [[f"positive, weighted by occurrences ({lab['occurrences']} labelled points)",
              fmt(lab["positive_by_occurrence"])],
             ["MC = 0, weighted by occurrences", fmt(lab["mc_zero_by_occurrence"])]]
  if "estimated_fn" in lab:
    rows += [["estimated FN rate, plug-in mean (1 - MC)^k over positives",
              fmt(lab["estimated_fn"])],
             ["positives supported by one rollout (MC <= 1/k)",
              fmt(lab["single_rollout_positives"])]]
  ex = lab.get("exact")
  if ex and ex.get("one_sided"):
    rows += [[f"{ex['checker']}: prefixes the one-sided check finds wrong", ex["records"]],
             [f"{ex['checker']}: hard label 1 on them (false-positive rate)",
              fmt(ex["false_positive"])]]
  elif ex:
    rows += [[f"exact: share of right prefixes ({ex['records']} checked)",
              f"{ex['right_share']:.3f}"],
             ["exact: hard-label accuracy", fmt(ex["accuracy"])],
             ["exact: false-positive rate P(1 | wrong)", fmt(ex["false_positive"])],
             ["exact: false-negative rate P(0 | right)", fmt(ex["false_negative"])],
             ["exact: false-discovery rate P(wrong | 1)", fmt(ex["false_discovery"])],
             ["exact: AUROC of MC", fmt(ex["auroc_mc"])],
             ["exact: recover ratio, mean MC wrong / right (the lrt rule's recover_ratio)",
              fmt(ex["recover_ratio"])]]
    if "accuracy_by_occurrence" in ex:
      rows += [["exact, by occurrence: share of right prefixes",
                f"{ex['right_share_by_occurrence']:.3f}"],
               ["exact, by occurrence: hard-label accuracy", fmt(ex["accuracy_by_occurrence"])],
               ["exact, by occurrence: false-discovery rate P(wrong | 1)",
                fmt(ex["false_discovery_by_occurrence"])]]
    for name, v in ex.get("by_source", {}).items():
      rows += [[f"exact, {name} ({v['records']}, {100 * v['right_share']:.1f}% right): "
                "FP rate / FDR", f"{fmt(v['false_positive'])} / {fmt(v['false_discovery'])}"]]
  md += render.table(["quantity", "value [95% CI]"], rows)
  md += ["", "Balance by step position (steps in the labelled prefix):", ""]
  md += render.table(["position", "records", "mean MC", "positive share"],
               [[p, v["records"], f"{v['mean_mc']:.3f}", fmt(v["positive"])]
                for p, v in lab["by_position"].items()])
  return "\n".join(md)


def plot_labels(res: dict, save) -> None:
  """labels.png: the MC histogram and the positive share by step position of each set."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  if "labels" in res:
    lab = res["labels"]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    names = list(lab["mc_histogram"])
    axes[0].bar(range(len(names)), [lab["mc_histogram"][k] for k in names])
    axes[0].set_xticks(range(len(names)))
    axes[0].set_xticklabels(names, fontsize=8)
    axes[0].set_xlabel("MC label")
    axes[0].set_ylabel("records")
    for key, name in (("labels", "generated"), ("labels_reference", "reference")):
      if key not in res:
        continue
      pos = list(res[key]["by_position"])
      v = [res[key]["by_position"][p]["positive"] for p in pos]
      axes[1].errorbar(pos, [e["value"] for e in v], marker="o", label=name, capsize=2,
                       yerr=[[max(0, e["value"] - e["lo"]) for e in v],
                             [max(0, e["hi"] - e["value"]) for e in v]])
    axes[1].legend(fontsize=8)
    axes[1].axhline(0.5, color="grey", lw=0.8, ls="--")
    axes[1].set_xlabel("step position")
    axes[1].set_ylabel("positive share")
    axes[1].set_ylim(0, 1)
    save(fig, "labels.png")


def derive_difficulty(items: list[dict], opts: compare.Options) -> None:
  """Arithmetic-environment questions get a "difficulty" (number of operations) when the
  items have none."""
  for it in items:
    if opts.difficulty_field not in it:
      p = arithmetic.parse_question(str(it.get(opts.question_field, "")))
      if p is not None:
        it[opts.difficulty_field] = f"{len(p.ops):02d} ops"


def section(*, mc_field: str = "mc", steps_field: str = "steps",
            exact: str = "none") -> compare.Section:
  """The process-supervision label section of `mode_jax.dataeval.compare_sets`: for each set
  whose records carry an MC field, `label_quality` ("labels", "labels_reference");
  `exact` names an exact checker (`REPORT_CHECKS`) for label agreement ("arithmetic" also
  derives the questions' difficulty; "gsm8k_calc" is one-sided: only the false-positive rate on
  the prefixes it finds wrong is reported)."""
  if exact != "none" and exact not in REPORT_CHECKS:
    raise ValueError(f"exact={exact!r}: expected 'none' or one of {sorted(REPORT_CHECKS)}")
  judge = None if exact == "none" else REPORT_CHECKS[exact]

  def compute(gen, ref, opts, log):
    out = {}
    for key, items in (("labels", gen), ("labels_reference", ref)):
      if items and all(isinstance(it.get(mc_field), (int, float)) for it in items[:100]):
        log(f"process-supervision labels ({key})")
        out[key] = label_quality(
            items, mc_field=mc_field, steps_field=steps_field,
            question_field=opts.question_field, qid_field=opts.qid_field, exact=judge,
            n_boot=opts.n_boot, seed=opts.seed)
        if out[key].get("exact") and exact not in EXACT:     # a one-sided check
          out[key]["exact"].update(one_sided=True, checker=exact)
    return out

  def markdown(res):
    md = []
    for key, title in (("labels", "generated"), ("labels_reference", "reference")):
      if key in res:
        md += ["", label_markdown(res[key], title)]
    return md

  return compare.Section(name="process-supervision labels", compute=compute,
                         markdown=markdown,
                         prepare=derive_difficulty if exact == "arithmetic" else None,
                         plot=plot_labels)
