"""Exact judges of labelled prefixes: record -> 1 (no wrong step so far), 0 (a wrong step), or
None (the judge cannot tell, e.g. a question from another source). The label report
(`prm_jax.label_quality`) measures labels against them; the label sources of PRM training
(`prm_jax.prm.label_sources`: exact, consensus) use them as the judge."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

from prm_jax import gsm8k_processbench
from prm_jax.envs import arithmetic


def arithmetic_exact(record: dict, question_field: str = "question",
                     steps_field: str = "steps") -> Optional[int]:
  """1 if the record's prefix is right so far, 0 if it has a wrong step, None if the question
  is not an arithmetic-environment question."""
  prob = arithmetic.parse_question(str(record.get(question_field, "")))
  if prob is None:
    return None
  return int(arithmetic.first_error(prob, record[steps_field]) is None)


def gsm8k_calculations(record: dict, steps_field: str = "steps") -> Optional[int]:
  """0 if a step of the record's prefix writes out a false calculation
  (`gsm8k_processbench.false_calculation`), else None: one-sided, for free-text math
  solutions, where a prefix whose calculations all hold can still be wrong."""
  steps = record[steps_field]
  return 0 if any(gsm8k_processbench.false_calculation(str(s)) for s in steps) else None


class CalculationCritic:
  """A rule critic for ProcessBench-style sets: the earliest step that writes out a false
  calculation (`gsm8k_processbench.false_calculation`), or -1 (no error found). A baseline for
  PRMs and LLM critics: it sees arithmetic slips only where the calculation is written out, and
  never a copied or misread number."""

  def first_errors(self, items: Sequence[tuple[str, Sequence[str]]]) -> list[int]:
    return [next((i for i, s in enumerate(steps)
                  if gsm8k_processbench.false_calculation(str(s))), -1) for _, steps in items]


CRITICS = {"gsm8k_calc": CalculationCritic}
EXACT: dict[str, Callable[[dict], Optional[int]]] = {"arithmetic": arithmetic_exact}
# Checks for the label report only (not label sources: "consensus" with a judge that never
# says 1 would keep only negatives).
REPORT_CHECKS: dict[str, Callable[[dict], Optional[int]]] = dict(
    EXACT, gsm8k_calc=gsm8k_calculations)
