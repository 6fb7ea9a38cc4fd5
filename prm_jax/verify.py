"""Verification at inference: score N sampled solutions, pick an answer, measure accuracy vs N.

Solution score from step scores (`aggregate`): "product" (Lightman et al.), "min"
(Math-Shepherd), "last" (can beat both for MC-trained PRMs, per Qwen's lessons), "mean".
Selection (`select`):
- "majority": the most frequent answer (self-consistency);
- "best_of_n": the answer of the highest-scoring solution;
- "weighted": PRM-weighted self-consistency, argmax_a sum_i score_i * 1[a_i = a];
- ORM-weighted vote is "weighted" with outcome-model scores.
Ties go to the answer seen first. Solutions without an answer (None) never win.

`accuracy_curves` subsamples n of the N sampled solutions per question (n = 1, 2, 4, ...) and
bootstraps over questions: mean accuracy and a 95% percentile interval per (method, n).
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np

AGGREGATIONS = ("product", "min", "last", "mean")


def aggregate(step_probs: Sequence[float], how: str = "product") -> float:
  """One solution score from its step probabilities: product, min or last."""
  p = np.asarray(step_probs, float)
  if how not in AGGREGATIONS:
    raise ValueError(f"aggregation {how!r}: expected one of {AGGREGATIONS}")
  if len(p) == 0:
    return 0.0
  return float({"product": np.prod, "min": np.min, "mean": np.mean,
                "last": lambda x: x[-1]}[how](p))


def select(answers: Sequence[Optional[str]], scores: Optional[Sequence[float]] = None,
           method: str = "majority") -> Optional[str]:
  """The selected answer: majority vote, score-weighted vote or best-of-N by score."""
  idx = [i for i, a in enumerate(answers) if a is not None]
  if not idx:
    return None
  if method == "majority":
    weights = {i: 1.0 for i in idx}
  elif method in ("weighted", "best_of_n"):
    if scores is None:
      raise ValueError(f"selection {method!r} needs scores")
    if method == "best_of_n":
      return answers[max(idx, key=lambda i: (scores[i], -i))]
    weights = {i: float(scores[i]) for i in idx}
  else:
    raise ValueError(f"selection {method!r}: expected majority, best_of_n or weighted")
  totals: dict = {}
  for i in idx:
    totals[answers[i]] = totals.get(answers[i], 0.0) + weights[i]
  first = {}
  for i in idx:
    first.setdefault(answers[i], i)
  return max(totals, key=lambda a: (totals[a], -first[a]))


def best_of_n_by_steps(questions: Sequence[Mapping], score_keys: Sequence[str], n: int) -> dict:
  """Why best-of-N picks what it picks: per score key, best-of-N on each question's first `n`
  solutions (`select`'s rule: the highest score among those with an answer) and the number of
  steps of what it picked against the candidates'. Each question needs "gold", "answers",
  "num_steps" and "scores".

  Returns {key: {"accuracy", "picked_steps", "candidate_steps", "right_candidate_steps",
  "wrong_candidate_steps" (means over questions' candidates with an answer), "picked_shortest"
  (share of picks with the fewest steps among those candidates), "by_steps" {steps: {"picked",
  "accuracy"}}}}: a score that falls with the number of steps (a product of probabilities)
  picks short solutions; if short ones are the wrong ones, best-of-N falls below chance."""
  out = {}
  for key in score_keys:
    hits, picked, cand, right, wrong, shortest, by = [], [], [], [], [], [], {}
    for q in questions:
      idx = [i for i, a in enumerate(q["answers"][:n]) if a is not None]
      if not idx:
        continue
      sc, st = q["scores"][key], q["num_steps"]
      i = max(idx, key=lambda j: (sc[j], -j))
      ok = q["answers"][i] == q["gold"]
      hits.append(ok)
      picked.append(st[i])
      cand += [st[j] for j in idx]
      right += [st[j] for j in idx if q["answers"][j] == q["gold"]]
      wrong += [st[j] for j in idx if q["answers"][j] != q["gold"]]
      shortest.append(st[i] == min(st[j] for j in idx))
      b = by.setdefault(int(st[i]), [0, 0])
      b[0], b[1] = b[0] + 1, b[1] + int(ok)
    mean = lambda xs: float(np.mean(xs)) if xs else float("nan")
    out[key] = {"questions": len(hits), "accuracy": mean(hits), "picked_steps": mean(picked),
                "candidate_steps": mean(cand), "right_candidate_steps": mean(right),
                "wrong_candidate_steps": mean(wrong), "picked_shortest": mean(shortest),
                "by_steps": {k: {"picked": v[0], "accuracy": v[1] / v[0]}
                             for k, v in sorted(by.items())}}
  return out


def accuracy_curves(questions: Sequence[Mapping], methods: Mapping[str, tuple],
                    ns: Sequence[int], *, n_boot: int = 200, seed: int = 0) -> dict:
  """questions: [{"gold", "answers": [N], "scores": {name: [N]}}]; methods: {label:
  (selection, score name or None)} -> {label: {n: {"mean", "lo", "hi"}}}."""
  rng = np.random.default_rng(seed)
  n_q = len(questions)
  n_max = min(len(q["answers"]) for q in questions)
  out: dict = {m: {} for m in methods}
  for n in ns:
    if n > n_max:
      raise ValueError(f"n={n} > {n_max} samples per question")
    # one random subset of n samples per (replicate, question), shared by all methods
    subsets = [[rng.choice(n_max, n, replace=False) for _ in range(n_q)] for _ in range(n_boot)]
    picks = [rng.integers(0, n_q, n_q) for _ in range(n_boot)]
    subs = np.array(subsets)                       # [n_boot, n_q, n]
    for label, (method, score) in methods.items():
      correct = np.zeros((n_boot, n_q))
      for qi, q in enumerate(questions):
        correct[:, qi] = _correct(q, subs[:, qi], method, score)
      point = correct.mean()                           # all questions, random subsets
      boot = np.array([correct[b, picks[b]].mean() for b in range(n_boot)])
      out[label][n] = {"mean": float(point), "lo": float(np.percentile(boot, 2.5)),
                       "hi": float(np.percentile(boot, 97.5))}
  return out


def _coded(q: Mapping) -> tuple:
  """(answer ids [N] with -1 for None, id of the gold answer or -2)."""
  ids: dict = {}
  codes = np.array([-1 if a is None else ids.setdefault(a, len(ids)) for a in q["answers"]])
  return codes, ids.get(q["gold"], -2)


def select_batch(codes: np.ndarray, scores: Optional[np.ndarray], method: str) -> np.ndarray:
  """`select` for B rows at once: codes [B, n] answer ids (-1: no answer), scores [B, n] ->
  the chosen id per row (-1 when no row answer). Same rule as `select`: weighted totals,
  ties to the answer seen first; best_of_n: the first highest-scoring answered solution."""
  b, n = codes.shape
  has = codes >= 0
  if method == "best_of_n":
    if scores is None:
      raise ValueError("selection 'best_of_n' needs scores")
    masked = np.where(has, scores, -np.inf)
    pick = np.argmax(masked, axis=1)
    out = codes[np.arange(b), pick]
    return np.where(has.any(1), out, -1)
  if method == "majority":
    w = has.astype(float)
  elif method == "weighted":
    if scores is None:
      raise ValueError("selection 'weighted' needs scores")
    w = np.where(has, scores, 0.0)
  else:
    raise ValueError(f"selection {method!r}: expected majority, best_of_n or weighted")
  a = int(codes.max()) + 1 if has.any() else 0
  if a == 0:
    return np.full(b, -1)
  rows = np.repeat(np.arange(b), n)
  flat = np.where(has, codes, a).ravel()                  # missing answers -> a spare bin
  # bincount adds its inputs in order: each answer's weights in index order, as `select` does
  totals = np.bincount(rows * (a + 1) + flat, w.ravel(), minlength=b * (a + 1))
  totals = totals.reshape(b, a + 1)[:, :a]
  first = np.full((b, a + 1), n)
  for j in range(n - 1, -1, -1):                          # earliest position of each answer
    first[np.arange(b), np.where(has[:, j], codes[:, j], a)] = j
  first = first[:, :a]
  present = first < n
  best = np.where(present, totals, -np.inf).max(1, keepdims=True)
  cand = present & (totals == best)
  choice = np.argmin(np.where(cand, first, n + 1), axis=1)
  return np.where(has.any(1), choice, -1)


def _correct(q: Mapping, sub: np.ndarray, method: str, score: Optional[str]) -> np.ndarray:
  """1.0 where `method` picks the gold answer from q's solutions `sub` [B, n]."""
  codes, gold = _coded(q)
  sc = None if score is None else np.asarray(q["scores"][score], float)[sub]
  return (select_batch(codes[sub], sc, method) == gold).astype(float)


def paired_difference(questions: Sequence[Mapping], method_a: tuple, method_b: tuple, n: int,
                      *, n_boot: int = 200, seed: int = 0) -> dict:
  """Accuracy of method_a minus method_b with n samples per question: both methods see the
  same random subsets; questions are resampled for the 95% interval. The difference is
  significant at that level when the interval excludes 0."""
  rng = np.random.default_rng(seed)
  n_q = len(questions)
  subs = np.array([[rng.choice(len(q["answers"]), n, replace=False) for q in questions]
                   for _ in range(n_boot)])                          # [n_boot, n_q, n]
  diffs = np.zeros((n_boot, n_q))
  for qi, q in enumerate(questions):
    diffs[:, qi] = (_correct(q, subs[:, qi], *method_a)
                    - _correct(q, subs[:, qi], *method_b))
  boot = np.array([diffs[b, rng.integers(0, n_q, n_q)].mean() for b in range(n_boot)])
  return {"n": n, "mean": float(diffs.mean()), "lo": float(np.percentile(boot, 2.5)),
          "hi": float(np.percentile(boot, 97.5))}


def curves_markdown(curves: dict) -> str:
  """Accuracy-vs-N curves as a markdown table."""
  ns = sorted(next(iter(curves.values())))
  lines = ["| method | " + " | ".join(f"N={n}" for n in ns) + " |",
           "|---|" + "---|" * len(ns)]
  for label, by_n in curves.items():
    lines.append(f"| {label} | " + " | ".join(
        f"{100 * by_n[n]['mean']:.1f} [{100 * by_n[n]['lo']:.1f}, {100 * by_n[n]['hi']:.1f}]"
        for n in ns) + " |")
  return "\n".join(lines)


def plot_curves(curves: dict, path: str, title: str = "") -> None:
  """Writes the accuracy-vs-N curves (with intervals) as a PNG."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(6, 4))
  for label, by_n in curves.items():
    ns = sorted(by_n)
    mean = [100 * by_n[n]["mean"] for n in ns]
    ax.plot(ns, mean, marker="o", label=label)
    ax.fill_between(ns, [100 * by_n[n]["lo"] for n in ns], [100 * by_n[n]["hi"] for n in ns],
                    alpha=0.15)
  ax.set_xscale("log", base=2)
  ax.set_xlabel("N sampled solutions")
  ax.set_ylabel("accuracy (%)")
  ax.set_title(title)
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(path, dpi=120)
  plt.close(fig)
