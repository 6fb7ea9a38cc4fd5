"""Correctness functions `is_correct(solution_text, gold_answer) -> bool` for rollouts.

- "arithmetic": the env's "The answer is N" (`prm_jax.envs.arithmetic.is_correct`).
- "gsm8k": the number after the FIRST "####" or "answer is" (else the last number of the
  text): a solution that runs on past its answer ("The answer is 18.\n\nQuestion: ...") is
  graded on the answer it gave, not on a made-up follow-up's; "$", commas, units and trailing
  periods are ignored and numbers compare by value ("18.00" == "18", "1,000" == "1000").
- "math": `math-verify` (HF's LaTeX/sympy equivalence checker) between the gold answer and the
  solution's answer. A gold answer without math delimiters (an unescaped `$`, `\(`, `\[` or
  `\boxed`) is wrapped in `$...$`; an escaped dollar (`\$18.90`, a currency sign) is not a
  delimiter. When a solution boxes more than once, the LAST `\boxed{}` is its answer (a
  corrected final answer comes last; math-verify alone looked at the first and, with two
  boxes, verified neither). Its signal-based timeout only works in the main thread; elsewhere
  (Beam workers, HTTP servers) it runs without one.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Callable, Optional

from prm_jax.envs import arithmetic

_NUM = r"-?\$?\s*-?\d[\d,]*(?:\.\d+)?|-?\$?\s*\.\d+"
_AFTER = re.compile(r"(?:####|answer is\s*:?)\s*(" + _NUM + ")", re.IGNORECASE)
_ANY = re.compile(_NUM)


def _value(s: str) -> Optional[float]:
  t = s.replace("$", "").replace(",", "").replace(" ", "")
  try:
    return float(t)
  except ValueError:
    return None


def gsm8k_answer(text: str) -> Optional[float]:
  """The final numeric answer of a GSM8K-style solution, or None."""
  found = _AFTER.findall(text)
  if found:
    return _value(found[0])
  found = _ANY.findall(text)
  return _value(found[-1]) if found else None


def gsm8k_is_correct(solution_text: str, gold_answer: str) -> bool:
  """Whether the solution's final number equals the GSM8K gold answer (relative 1e-6)."""
  pred, gold = gsm8k_answer(solution_text), _value(str(gold_answer).strip().rstrip("."))
  if gold is None:
    gold = gsm8k_answer(str(gold_answer))
  return pred is not None and gold is not None and abs(pred - gold) <= 1e-6 * max(1, abs(gold))


_DELIMITED = re.compile(r"(?<!\\)\$|\\\(|\\\[|\\boxed")


def last_boxed(text: str) -> Optional[str]:
  """`\boxed{...}` of the last box in `text` (braces matched), or None."""
  start = text.rfind("\\boxed{")
  if start < 0:
    return None
  depth, i = 0, start + len("\\boxed")
  for j in range(i, len(text)):
    depth += {"{": 1, "}": -1}.get(text[j], 0)
    if depth == 0:
      return text[start:j + 1]
  return None


def math_is_correct(solution_text: str, gold_answer: str) -> bool:
  """Whether the solution's final answer equals the MATH gold answer (math-verify)."""
  from math_verify import parse, verify
  logging.getLogger("math_verify").setLevel(logging.ERROR)
  main = threading.current_thread() is threading.main_thread()
  timeout = 5 if main else None
  gold = gold_answer if _DELIMITED.search(gold_answer) else f"${gold_answer}$"
  box = last_boxed(solution_text)
  if box is not None:
    solution_text = f"${box}$"
  try:
    g = parse(gold, parsing_timeout=timeout)
    p = parse(solution_text, parsing_timeout=timeout)
    return bool(g and p and verify(g, p, timeout_seconds=timeout))
  except Exception:   # unparsable LaTeX or a timeout: not verified as correct
    return False


GRADERS: dict[str, Callable[[str, str], bool]] = {
    "arithmetic": arithmetic.is_correct,
    "gsm8k": gsm8k_is_correct,
    "math": math_is_correct,
}


def get(name: str) -> Callable[[str, str], bool]:
  """The grader named `name` ("arithmetic", "gsm8k", "math")."""
  if name not in GRADERS:
    raise ValueError(f"grader {name!r}: expected one of {sorted(GRADERS)}")
  return GRADERS[name]
