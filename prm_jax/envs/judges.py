"""Exact judges of labelled prefixes: record -> 1 (no wrong step so far), 0 (a wrong step), or
None (the judge cannot tell, e.g. a question from another source). The label report
(`prm_jax.label_quality`) measures labels against them; the label sources of PRM training
(`prm_jax.prm.label_sources`: exact, consensus) use them as the judge."""

from __future__ import annotations

from typing import Callable, Optional

from prm_jax.envs import arithmetic


def arithmetic_exact(record: dict, question_field: str = "question",
                     steps_field: str = "steps") -> Optional[int]:
  """1 if the record's prefix is right so far, 0 if it has a wrong step, None if the question
  is not an arithmetic-environment question."""
  prob = arithmetic.parse_question(str(record.get(question_field, "")))
  if prob is None:
    return None
  return int(arithmetic.first_error(prob, record[steps_field]) is None)


EXACT: dict[str, Callable[[dict], Optional[int]]] = {"arithmetic": arithmetic_exact}
