"""Per-task metrics: SNI's ROUGE-L and exact match, math final-answer accuracy, per-task tables,
and task-level win rates between two runs with a sign (binomial) test, as the MoDE paper's
Table 3.

ROUGE-L follows SNI's `compute_metrics.py`: `rouge_score` RougeScorer(["rougeL"],
use_stemmer=True), F-measure, max over the references, x100. Exact match compares SNI's
normalised strings (lower case, punctuation and articles removed, whitespace collapsed).
"""

from __future__ import annotations

import re
import string
from typing import Mapping, Optional, Sequence

from mode_jax.data.math_data import normalize_number

REF_SEP = "\x1e"   # joins several reference outputs into one string feature


def reference_rows(pairs) -> list[dict]:
  """[(input, [references])] -> task rows with the first reference as target and all of them,
  joined by REF_SEP, as "references" (what the metrics split)."""
  return [{"inputs": x, "targets": refs[0], "references": REF_SEP.join(refs)} for x, refs in pairs]
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_ANSWER = re.compile(r"answer is\s*:?\s*(.+?)\s*\.?\s*$", re.IGNORECASE | re.MULTILINE)
_SCORER = None


def _scorer():
  global _SCORER
  if _SCORER is None:
    from rouge_score import rouge_scorer
    _SCORER = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
  return _SCORER


def normalize_answer(s: str) -> str:
  """SQuAD-style normalisation: lower case, no punctuation or articles, single spaces."""
  s = s.lower()
  s = "".join(ch for ch in s if ch not in set(string.punctuation))
  s = _ARTICLES.sub(" ", s)
  return " ".join(s.split())


def rouge_l(prediction: str, references: Sequence[str]) -> float:
  """ROUGE-L F-measure (x100) of `prediction` against its best reference."""
  return 100.0 * max(_scorer().score(target=r, prediction=prediction)["rougeL"].fmeasure
                     for r in references)


def exact_match(prediction: str, references: Sequence[str]) -> float:
  """100 when the normalised prediction equals a normalised reference, else 0."""
  return 100.0 * max(float(normalize_answer(prediction) == normalize_answer(r))
                     for r in references)


def postprocess(output, example=None, is_target: bool = False):
  """seqio postprocess_fn: targets become the list of references, predictions stay strings."""
  if is_target and example is not None and "references" in example:
    refs = example["references"]
    refs = refs.decode("utf-8") if isinstance(refs, bytes) else str(refs)
    return refs.split(REF_SEP)
  return output.decode("utf-8") if isinstance(output, bytes) else output


def _as_refs(t) -> list[str]:
  return list(t) if isinstance(t, (list, tuple)) else [t]


def rouge_em_metrics(targets: Sequence, predictions: Sequence[str]) -> dict:
  """seqio metric_fn: mean ROUGE-L and exact match over examples (targets: reference lists)."""
  n = max(len(predictions), 1)
  return {"rougeL": sum(rouge_l(p, _as_refs(t)) for t, p in zip(targets, predictions)) / n,
          "exact_match": sum(exact_match(p, _as_refs(t)) for t, p in zip(targets, predictions))
                         / n}


def extract_answer(text: str) -> Optional[str]:
  """The last "#### answer" / "The answer is" value in `text` (None when there is none)."""
  m = _ANSWER.findall(text)
  return m[-1].strip() if m else None


def math_answer_metrics(targets: Sequence, predictions: Sequence[str]) -> dict:
  """Accuracy of the final answer ("The answer is X.") after number normalisation."""
  hits = 0
  for t, p in zip(targets, predictions):
    ans = extract_answer(p)
    hits += ans is not None and any(normalize_number(ans) == normalize_number(r)
                                    for r in _as_refs(t))
  return {"accuracy": 100.0 * hits / max(len(predictions), 1)}


def per_task_table(scores: Mapping[str, Mapping[str, float]]) -> tuple[dict, str]:
  """({"tasks": scores, "mean": {metric: mean over tasks}}, markdown table)."""
  metrics = sorted({m for s in scores.values() for m in s})
  mean = {m: sum(s[m] for s in scores.values() if m in s) /
             max(1, sum(m in s for s in scores.values())) for m in metrics}
  lines = ["| task | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
  for task in sorted(scores):
    lines.append(f"| {task} | " + " | ".join(f"{scores[task].get(m, float('nan')):.2f}"
                                             for m in metrics) + " |")
  lines.append("| **mean** | " + " | ".join(f"**{mean[m]:.2f}**" for m in metrics) + " |")
  return {"tasks": dict(scores), "mean": mean}, "\n".join(lines)


def win_rates(a: Mapping[str, float], b: Mapping[str, float], *,
              confidence: float = 0.99) -> dict:
  """Task-level comparison of run A against run B on their common tasks.

  win_rate = wins / tasks (ties are not wins); a two-sided sign test (binomial, p = 0.5 over
  the non-tied tasks) gives p_value; significant when p_value < 1 - confidence."""
  from scipy.stats import binomtest
  common = sorted(set(a) & set(b))
  if not common:
    raise ValueError("win_rates: the two runs share no task")
  wins = sum(a[t] > b[t] for t in common)
  losses = sum(a[t] < b[t] for t in common)
  decided = wins + losses
  p = binomtest(wins, decided, 0.5).pvalue if decided else 1.0
  return {"tasks": len(common), "wins": wins, "losses": losses, "ties": len(common) - decided,
          "win_rate": wins / len(common), "p_value": float(p),
          "significant": bool(p < 1 - confidence)}
