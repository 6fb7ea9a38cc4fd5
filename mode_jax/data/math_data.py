"""GSM8K and MATH (prm800k `math_splits` format) as (question, reference steps, final answer).

GSM8K lines: {"question", "answer"}; the answer's lines are steps with calculator annotations
`<<expr=value>>` and the last line is `#### <final>`. MATH lines: {"problem", "solution",
"answer", "subject", "level", "unique_id"}; steps are the solution's non-empty lines.
"""

from __future__ import annotations

import re
from typing import Sequence

from mode_jax.atomic_io import jsonl_records

_CALC = re.compile(r"<<[^>]*>>")


class MathDataError(ValueError):
  """A malformed line; the message names the file, line number and field."""


def _need(rec: dict, key: str, where: str) -> str:
  if not isinstance(rec.get(key), str):
    raise MathDataError(f"{where}: missing or non-string field {key!r}")
  return rec[key]


def normalize_number(s: str) -> str:
  """"1,000" -> "1000", "$5.00" -> "5", "7.50" -> "7.5"; other strings are stripped only."""
  t = s.strip().replace(",", "").lstrip("$").rstrip(".")
  try:
    v = float(t)
  except ValueError:
    return s.strip()
  return str(int(v)) if v == int(v) else repr(v)


def read_gsm8k(path: str, keep_calculator: bool = False) -> list[dict]:
  """[{"id", "question", "steps", "answer"}] ("answer" normalised, e.g. "1,000" -> "1000")."""
  out = []
  for n, rec in jsonl_records(path, error_cls=MathDataError):
    where = f"{path}:{n}"
    q, a = _need(rec, "question", where), _need(rec, "answer", where)
    if "####" not in a:
      raise MathDataError(f"{where}: field 'answer' has no '#### <final answer>' line")
    body, final = a.rsplit("####", 1)
    steps = [ln.strip() for ln in body.strip().split("\n") if ln.strip()]
    if not keep_calculator:
      steps = [_CALC.sub("", s) for s in steps]
    out.append({"id": f"gsm8k-{n}", "question": q.strip(), "steps": steps,
                "answer": normalize_number(final)})
  return out


def read_math(path: str) -> list[dict]:
  """[{"id", "question", "steps", "answer", "subject", "level"}] from prm800k math_splits."""
  out = []
  for n, rec in jsonl_records(path, error_cls=MathDataError):
    where = f"{path}:{n}"
    sol = _need(rec, "solution", where)
    out.append({"id": str(rec.get("unique_id", f"math-{n}")),
                "question": _need(rec, "problem", where).strip(),
                "steps": [ln.strip() for ln in sol.split("\n") if ln.strip()],
                "answer": _need(rec, "answer", where).strip(),
                "subject": str(rec.get("subject", "")), "level": rec.get("level", "")})
  return out


def math_rows(records: Sequence[dict]) -> list[dict]:
  """Question -> step-by-step solution ending in "The answer is X."; reference = answer."""
  return [{"inputs": f"Question: {r['question']}\nAnswer: ",
           "targets": "\n".join(r["steps"] + [f"The answer is {r['answer']}."]),
           "references": r["answer"]} for r in records]
