"""Statistics of a seeded comparison study (`experiments.compare`): means with 95% t-intervals
over seeds, the paired primary comparison, task-level win rates with a sign test, and the
routing analysis (per-task expert usage of each routed block, its entropy and task
specificity). Pure numpy/scipy on the per-run results, so a study's tables can be rebuilt from
its run files without a model.
"""

from __future__ import annotations

import json
import os
import re
from typing import Mapping, Sequence

import numpy as np

from mode_jax.data import metrics


def slug(label: str) -> str:
  """A method label as a directory / file name ("MoDE 4x8x1" -> "MoDE_4x8x1")."""
  return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_")


def short_task(name: str) -> str:
  """A task name without its suite prefix, for plot labels."""
  return re.sub(r"^(syn|words|sni)_", "", name)


def interval(values: Sequence[float], confidence: float = 0.95) -> dict:
  """Mean and the two-sided Student-t confidence interval half-width over `values` (seeds);
  half-width None with a single value."""
  from scipy import stats
  v = np.asarray(values, np.float64)
  mean = float(v.mean())
  if len(v) < 2:
    return {"mean": mean, "half_width": None, "n": len(v)}
  hw = float(stats.t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
  return {"mean": mean, "half_width": hw, "n": len(v)}


def fmt(iv: dict) -> str:
  """"mean ± half-width" of an interval (the mean alone for one seed)."""
  return f"{iv['mean']:.2f}" + ("" if iv["half_width"] is None else f" ± {iv['half_width']:.2f}")


def method_summary(runs: Mapping[int, dict], tasks: Sequence[str], metric: str) -> dict:
  """Per seed the mean over tasks of `metric`, and its interval over seeds."""
  per_seed = {s: float(np.mean([r["scores"][t][metric] for t in tasks])) for s, r in runs.items()}
  return dict(interval(list(per_seed.values())), per_seed=per_seed)


def task_means(runs: Mapping[int, dict], tasks: Sequence[str], metric: str) -> dict:
  """{task: interval over seeds of that task's `metric`}."""
  return {t: interval([r["scores"][t][metric] for r in runs.values()]) for t in tasks}


def paired(a_runs: Mapping[int, dict], b_runs: Mapping[int, dict], tasks: Sequence[str],
           metric: str) -> dict:
  """A - B paired over the seeds both have (per seed: mean over tasks of the difference), with
  its 95% interval; and the task-level sign test on the per-task means over those seeds (the
  paper's Table 3 win rates) plus the (seed, task) pair counts."""
  seeds = sorted(set(a_runs) & set(b_runs))
  if not seeds:
    return {"seeds": []}
  diff = [float(np.mean([a_runs[s]["scores"][t][metric] - b_runs[s]["scores"][t][metric]
                         for t in tasks])) for s in seeds]
  mean_a = {t: float(np.mean([a_runs[s]["scores"][t][metric] for s in seeds])) for t in tasks}
  mean_b = {t: float(np.mean([b_runs[s]["scores"][t][metric] for s in seeds])) for t in tasks}
  pairs = [(a_runs[s]["scores"][t][metric], b_runs[s]["scores"][t][metric])
           for s in seeds for t in tasks]
  return {"seeds": seeds, "diff": interval(diff), "win_rates": metrics.win_rates(
      mean_a, mean_b, confidence=0.95),
          "pair_wins": sum(x > y for x, y in pairs), "pair_losses": sum(x < y for x, y in pairs),
          "pairs": len(pairs)}


def _entropy(p: np.ndarray) -> np.ndarray:
  p = np.clip(p, 1e-12, None)
  p = p / p.sum(-1, keepdims=True)
  return -np.sum(p * np.log(p), axis=-1)


def routing_analysis(usage: np.ndarray) -> dict:
  """`usage` [tasks, blocks, experts]: mean routing weight of each task's eval tokens per
  routed block (layer x projection x rank block) and expert.

  Returns per task the entropy (nats) of its mean expert usage, averaged over blocks; per block
  the task specificity: the mean over tasks of the Jensen-Shannon divergence (nats) between the
  task's usage and the all-task usage (0: every task routes alike; ln 2 at most), and the
  maximum over blocks. A router that collapsed to one expert or ignores the task scores ~0."""
  u = np.asarray(usage, np.float64)
  u = u / np.clip(u.sum(-1, keepdims=True), 1e-12, None)
  overall = u.mean(0, keepdims=True)
  m = 0.5 * (u + overall)
  js = 0.5 * (_kl(u, m) + _kl(np.broadcast_to(overall, u.shape), m))   # [tasks, blocks]
  spec = js.mean(0)
  return {"task_entropy": _entropy(u).mean(1).tolist(),
          "uniform_entropy": float(np.log(u.shape[-1])),
          "block_specificity": spec.tolist(),
          "mean_specificity": float(spec.mean()), "max_specificity": float(spec.max()),
          "most_specific_block": int(spec.argmax())}


def _kl(p, q):
  p, q = np.clip(p, 1e-12, None), np.clip(q, 1e-12, None)
  return np.sum(p * np.log(p / q), axis=-1)


def read_train_curve(path: str):
  """[(step, loss)] of a run's `metrics.jsonl` (the logged training steps; a step logged twice,
  by a run resumed after a crash, counts once, the later line wins); None when absent."""
  if not os.path.exists(path):
    return None
  by_step = {}
  with open(path) as f:
    for line in f:
      row = json.loads(line)
      if "loss" in row:
        by_step[int(row["step"])] = float(row["loss"])
  return sorted(by_step.items()) or None


def train_loss_summary(runs: Mapping[str, Mapping[int, dict]], reference: str = None) -> dict:
  """How fast each method fits: per method, over the seeds whose runs carry a `train_curve`
  with the same logged steps, the interval of the mean logged training loss over the whole run
  (the area under the curve: early speed counts) and over its second half (where it ends up),
  the mean curve, and (with `reference`, a method label) the paired differences of both to the
  reference's over common seeds: at a seed every method sees the same batches (data order =
  seed), so the pairing removes the batch-to-batch variation. Methods without curves are left
  out."""
  out = {}
  for lab, rs in runs.items():
    curves = {s: r["train_curve"] for s, r in rs.items() if r.get("train_curve")}
    if not curves:
      continue
    steps = [s for s, _ in next(iter(curves.values()))]
    curves = {s: c for s, c in curves.items() if [x for x, _ in c] == steps}
    losses = {s: np.array([v for _, v in c]) for s, c in curves.items()}
    half = len(steps) // 2
    per_seed = {"mean_loss": {s: float(v.mean()) for s, v in losses.items()},
                "late_loss": {s: float(v[half:].mean()) for s, v in losses.items()}}
    out[lab] = {"seeds": sorted(losses), "steps": steps, "late_from_step": steps[half],
                "mean_curve": np.mean(list(losses.values()), axis=0).tolist(),
                "per_seed": per_seed,
                **{k: interval(list(v.values())) for k, v in per_seed.items()}}
  if reference in out:
    ref = out[reference]["per_seed"]
    for lab, r in out.items():
      common = sorted(set(r["seeds"]) & set(out[reference]["seeds"]))
      if lab != reference and common:
        r["vs_reference"] = {k: interval([r["per_seed"][k][s] - ref[k][s] for s in common])
                             for k in ref}
        r["vs_reference"]["reference"] = reference
  return out
