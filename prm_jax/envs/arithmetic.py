"""Multi-step arithmetic problems whose first wrong step is known exactly.

A problem is a start value and a chain of operations ("Start with 7. Add 5, then multiply by
3, then subtract 4. What is the result?"). Its reference solution has one line per operation,
"7 + 5 = 12", "12 * 3 = 36", "36 - 4 = 32", and a last line "The answer is 32." (so a problem
with `n` operations has `n + 1` steps). `check(problem, text)` reads any solution text (one
step per line) and says which step is the first wrong one: step i < n is right only if it is
exactly "<true value before i> <op i> <operand i> = <true value after i>" (spaces free; "x"
and "×" read as "*", "÷" as "/"), the answer step only if it states the true answer, and any
step after the answer step is wrong. A solution can reach the right answer after a wrong step
("answer-correct but process-wrong"); `is_correct` grades the final answer only, as the
OmegaPRM rollouts are graded.
"""

from __future__ import annotations

import dataclasses
import random
import re
from typing import Optional, Sequence

OPS = ("+", "-", "*", "/")
_WORDS = {"+": "add {b}", "-": "subtract {b}", "*": "multiply by {b}", "/": "divide by {b}"}
_LINE = re.compile(r"^\s*(-?\d+)\s*([-+*/x×÷])\s*(-?\d+)\s*=\s*(-?\d+)\s*\.?\s*$")
_ANSWER = re.compile(r"answer is\s*:?\s*\$?\s*(-?[\d,]*\.?\d+)", re.IGNORECASE)
_CANON = {"x": "*", "×": "*", "÷": "/"}


@dataclasses.dataclass(frozen=True)
class ArithmeticConfig:
  """min_ops..max_ops operations per problem (2..16); start in [1, max_start]; + and - operands
  in [1, max_operand]; * and / operands in [2, max_factor]; every intermediate value stays in
  [0, max_value] when allow_negative is False (else [-max_value, max_value])."""
  min_ops: int = 3
  max_ops: int = 3
  ops: tuple = OPS
  max_start: int = 20
  max_operand: int = 20
  max_factor: int = 5
  max_value: int = 200
  allow_negative: bool = False

  def __post_init__(self):
    if not 1 <= self.min_ops <= self.max_ops <= 16:
      raise ValueError(f"ArithmeticConfig.min_ops/max_ops: need 1 <= min_ops <= max_ops <= 16, "
                       f"got {self.min_ops}, {self.max_ops}")
    bad = [o for o in self.ops if o not in OPS]
    if bad or not self.ops or not any(o in ("+", "-") for o in self.ops):
      raise ValueError(f"ArithmeticConfig.ops: a subset of {OPS} with + or -, got {self.ops}")
    for f in ("max_start", "max_operand", "max_value"):
      if getattr(self, f) < 1:
        raise ValueError(f"ArithmeticConfig.{f} must be >= 1, got {getattr(self, f)}")
    if self.max_factor < 2:
      raise ValueError(f"ArithmeticConfig.max_factor must be >= 2, got {self.max_factor}")
    if self.max_start > self.max_value:
      raise ValueError("ArithmeticConfig.max_start must be <= max_value")


@dataclasses.dataclass(frozen=True)
class Problem:
  id: str
  start: int
  ops: tuple          # ((op, operand), ...)

  @property
  def values(self) -> list[int]:
    """Running values: values[0] = start, values[i + 1] after operation i."""
    v = [self.start]
    for op, b in self.ops:
      v.append(apply(v[-1], op, b))
    return v

  @property
  def answer(self) -> str:
    """The final value as text."""
    return str(self.values[-1])

  @property
  def num_steps(self) -> int:
    """Steps of the reference solution: one per operation plus the final answer line."""
    return len(self.ops) + 1

  @property
  def question(self) -> str:
    """The question text ("Start with 7. Add 3, then ... What is the result?")."""
    words = ", then ".join(_WORDS[op].format(b=b) for op, b in self.ops)
    return f"Start with {self.start}. {words[0].upper()}{words[1:]}. What is the result?"

  def step_text(self, i: int, value: Optional[int] = None, result: Optional[int] = None) -> str:
    """Step i as written from running `value` (default: the true one) with `result`."""
    vals = self.values
    if i == len(self.ops):
      return f"The answer is {vals[-1] if value is None else value}."
    op, b = self.ops[i]
    a = vals[i] if value is None else value
    return f"{a} {op} {b} = {apply(a, op, b) if result is None else result}"

  @property
  def solution(self) -> str:
    """The reference solution, one step per line."""
    return "\n".join(self.step_text(i) for i in range(self.num_steps))

  def to_json(self) -> dict:
    """{"id", "question", "answer", "start", "ops"}; `from_json` reads it back."""
    return {"id": self.id, "question": self.question, "answer": self.answer,
            "start": self.start, "ops": [list(o) for o in self.ops]}

  @classmethod
  def from_json(cls, d: dict) -> "Problem":
    """The problem of a `to_json` dict."""
    return cls(id=str(d["id"]), start=int(d["start"]), ops=tuple((str(o), int(b))
                                                                 for o, b in d["ops"]))


_QUESTION = re.compile(r"^Start with (-?\d+)\. (.*)\. What is the result\?$")
_OP_WORDS = [(re.compile(r"^" + w.replace("{b}", r"(-?\d+)") + r"$", re.IGNORECASE), op)
             for op, w in _WORDS.items()]


def parse_question(question: str, pid: str = "") -> Optional[Problem]:
  """The `Problem` behind a question text written by `Problem.question` (None for any other
  text), so records that carry only the question can be checked exactly."""
  m = _QUESTION.match(question.strip())
  if not m:
    return None
  ops = []
  for part in m.group(2).split(", then "):
    got = next(((op, int(mm.group(1))) for rx, op in _OP_WORDS if (mm := rx.match(part))), None)
    if got is None:
      return None
    ops.append(got)
  return Problem(id=pid, start=int(m.group(1)), ops=tuple(ops))


def apply(a: int, op: str, b: int) -> int:
  """a op b for op in + - * / (integer division)."""
  if op == "+":
    return a + b
  if op == "-":
    return a - b
  if op == "*":
    return a * b
  if op == "/":
    return a // b
  raise ValueError(f"unknown operation {op!r}")


def make_problem(rng: random.Random, cfg: ArithmeticConfig, pid: str) -> Problem:
  """A random problem of `cfg` (operation count, operand and value ranges) with id `pid`."""
  n = rng.randint(cfg.min_ops, cfg.max_ops)
  lo = -cfg.max_value if cfg.allow_negative else 0
  v = rng.randint(1, cfg.max_start)
  start, ops = v, []
  while len(ops) < n:
    op = rng.choice(cfg.ops)
    if op in ("+", "-"):
      b = rng.randint(1, cfg.max_operand)
    elif op == "*":
      b = rng.randint(2, cfg.max_factor)
    else:
      divisors = [d for d in range(2, cfg.max_factor + 1) if v % d == 0 and v != 0]
      if not divisors:
        continue
      b = rng.choice(divisors)
    nv = apply(v, op, b)
    if lo <= nv <= cfg.max_value:
      ops.append((op, b))
      v = nv
  return Problem(id=pid, start=start, ops=tuple(ops))


def make_problems(n: int, cfg: ArithmeticConfig = ArithmeticConfig(), *, seed: int = 0,
                  prefix: str = "arith") -> list[Problem]:
  """`n` problems, deterministic in (cfg, seed); ids "<prefix>-<seed>-<i>"."""
  rng = random.Random(seed)
  return [make_problem(rng, cfg, f"{prefix}-{seed}-{i}") for i in range(n)]


def split_lines(text: str) -> list[str]:
  """Solution steps: the lines of `text` (a trailing newline does not start a step)."""
  lines = text.split("\n")
  if lines and lines[-1] == "":
    lines.pop()
  return lines


def parse_step(line: str) -> Optional[tuple[int, str, int, int]]:
  """(a, op, b, result) of an operation line, or None."""
  m = _LINE.match(line)
  if not m:
    return None
  op = _CANON.get(m.group(2), m.group(2))
  return int(m.group(1)), op, int(m.group(3)), int(m.group(4))


def extract_answer(text: str) -> Optional[str]:
  """The number after the last "answer is" (commas dropped), or None."""
  found = _ANSWER.findall(text)
  if not found:
    return None
  s = found[-1].replace(",", "")
  try:
    v = float(s)
  except ValueError:
    return None
  return str(int(v)) if v == int(v) else s


def is_correct(solution_text: str, gold_answer: str) -> bool:
  """Outcome grading: the stated final answer equals the gold answer."""
  ans = extract_answer(solution_text)
  return ans is not None and ans == str(gold_answer).strip()


def step_is_right(problem: Problem, i: int, line: str) -> bool:
  """Whether `line` is a right step `i` of `problem` (right operands, operation and result)."""
  vals = problem.values
  if i < len(problem.ops):
    parsed = parse_step(line)
    op, b = problem.ops[i]
    return parsed == (vals[i], op, b, vals[i + 1])
  if i == len(problem.ops):
    return extract_answer(line) == problem.answer and parse_step(line) is None
  return False


@dataclasses.dataclass(frozen=True)
class Check:
  first_error: Optional[int]   # index of the first wrong step, None if every step is right
  num_steps: int               # steps in the text
  complete: bool               # the text has the answer step
  answer_correct: bool         # the stated final answer is the true one


def check(problem: Problem, text: str) -> Check:
  """Exact first-error label of a (possibly partial) solution text."""
  lines = split_lines(text)
  first = next((i for i, ln in enumerate(lines) if not step_is_right(problem, i, ln)), None)
  complete = extract_answer(text) is not None
  return Check(first_error=first, num_steps=len(lines), complete=complete,
               answer_correct=is_correct(text, problem.answer))


def first_error(problem: Problem, steps: Sequence[str]) -> Optional[int]:
  """`check` on steps given as a list (each may end with its newline)."""
  return check(problem, "".join(s if s.endswith("\n") else s + "\n" for s in steps)).first_error
