"""A ProcessBench-protocol set that exists offline: GSM8K reference solutions with one error
injected at a step known by construction.

    python -m prm_jax.gsm8k_processbench --input=../shared/data/gsm8k/test.jsonl \\
        --output=runs/gsm8k_processbench.jsonl [--seed=0] [--num=0]
    python -m prm_jax.evaluate --prm=runs/prm/prm_model --data=runs/gsm8k_processbench.jsonl
    # exactly labelled PRM training records from the train split (configs/prm_gsm8k.py):
    python -m prm_jax.gsm8k_processbench --records --input=../shared/data/gsm8k/train.jsonl \\
        --output=runs/gsm8k_prm_records.jsonl [--num=2000]

ProcessBench's own data is not installable here. GSM8K's reference solutions annotate every
calculation (`16 - 3 - 4 = <<16-3-4=9>>9 duck eggs`), so an error can be put at a chosen step
and its index is the label:
- "arithmetic": a step's result is replaced by a wrong value (+-1, +-10, x10, / 10 or two digits
  swapped; never the right one), in the text and the annotation;
- "copy": an operand of a step that repeats an earlier step's result is copied wrongly (one of
  the same wrong values) and the step's result is recomputed from it, so the step's own
  arithmetic holds but it no longer follows from the steps before.
The steps after the injected one are left as they were (the earliest error is the label, as in
ProcessBench). Half of the solutions, drawn per problem from `--seed`, are left correct (label
-1). A problem is used only if its reference is well formed: every annotation's expression
evaluates to its result (so the correct half is correct and the steps before an injected error
are right), and at least one step can take the drawn kind of error (else the other kind, else
the problem is skipped and counted).

Each line has ProcessBench's fields ("id", "generator", "problem", "steps", "final_answer_correct",
"label") plus "error_kind" ("none" | "arithmetic" | "copy"), "original_step" (the step before
the injection, or null) and "answer" (GSM8K's gold). Steps are the solution's lines with the
annotations removed, the "#### N" line rewritten as "The answer is N." (its own last step).
The set is drawn from GSM8K's test split; nothing in the project trains on it (tests check that
no question of the set is in the train split).

`--records` (`training_records`) writes PRM training records instead: every usable problem of
`--input` (the train split) twice, its reference (every prefix labelled 1.0) and the reference
with one injected error (prefixes 1.0 before it, 0.0 from it on), each step followed by "\\n"
as `prm_jax.evaluate` scores steps; rows whose normalised question is in an `--exclude` file
(default: the test.jsonl beside --input) are left out, and an excluded file as --input is refused.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import operator
import os
import random
import re
from typing import Optional

from absl import flags

from mode_jax import cli
from mode_jax.atomic_io import jsonl_records, write_jsonl_atomic
from prm_jax.questions import normalize_question

_CALC = re.compile(r"<<([^<>=]*)=([^<>]*)>>")
_SHOWN = re.compile(r"\s*\$?\s*(\d[\d,]*(?:\.\d+)?)")   # the result written after an annotation
_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])")
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv}
KINDS = ("arithmetic", "copy")


def evaluate_expr(expr: str) -> Optional[float]:
  """The value of an arithmetic expression of numbers, + - * / and parentheses; None for
  anything else (names, powers, malformed text)."""
  def ev(node):
    if isinstance(node, ast.Expression):
      return ev(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
      return float(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
      return _OPS[type(node.op)](ev(node.left), ev(node.right))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
      return -ev(node.operand)
    raise ValueError(node)
  try:
    return ev(ast.parse(expr.replace(",", ""), mode="eval"))
  except (ValueError, SyntaxError, ZeroDivisionError, TypeError):
    return None


# A shown calculation in free text: a run of numbers, operators, parentheses and "$" before
# "=", and the number after it ("48/2 = 24 clips", "$5 x 3 = $15", "(5 + 3) * 2 = 16").
_SHOWN_EQ = re.compile(r"([\d\s.,+\-*/x×÷()$]+)=\s*\$?\s*(-?\d[\d,]*(?:\.\d+)?)"
                       r"(?![\w/%]|[.,]\d|\s*[-+*/x×÷–]\s*[\w($]|\s+\d|\s+and\s+\(?\d)")
_HAS_OP = re.compile(r"\d\s*\)?\s*[-+*/]\s*\(?\s*\$?\d")


def false_calculation(text: str) -> Optional[str]:
  """The first calculation written out in `text` ("a op b ... = c") whose result is wrong
  under every reading a writer might intend (exact, rounded to 1 or 2 decimals, or rounded
  down or up to a whole number: "100 / 6 = 16 bracelets"), or None. Only whole expressions count: one that continues a phrase ("60 students x 2/3 = 40")
  or a result that goes on ("= 1/4", "= 5A/5", "= 4000 + 2040", "= 5 and 2/3") is
  skipped; "a / b/c" also reads as a / (b/c). Commas count as
  thousands separators only inside a number ("1,200"); after ", " or ". " a new expression
  starts. One-sided: a text without a false calculation can still be wrong."""
  for m in _SHOWN_EQ.finditer(text):
    if re.search(r"[\d=:–—]\s*$", text[:m.start()]):   # the tail of a longer expression
      continue
    left = re.split(r"[,.]\s", m.group(1))[-1]
    left = left.replace("$", "").replace("×", "*").replace("÷", "/")
    left = re.sub(r"(?<=[\d)])\s*x\s*(?=[\d(])", "*", left).strip()
    lead = re.match(r"[^\d(.]*", left).group(0)
    left = left[len(lead):]
    if re.search(r"[-+*/x×÷]", lead) or not _HAS_OP.search(left):   # an operand in words
      continue
    r = _num(m.group(2))
    # "25 / 1/3" is read both as written and as a division by the fraction
    values = [evaluate_expr(e) for e in
              {left, re.sub(r"/\s*(\d+)\s*/\s*(\d+)", r"/(\1/\2)", left)}]
    values = [v for v in values if v is not None]
    if not values or r is None:
      continue
    tol = 1e-6 * max(1.0, abs(r))
    readings = [x for v in values
                for x in (v, round(v, 1), round(v, 2), math.floor(v), math.ceil(v))]
    if all(abs(x - r) > tol for x in readings):
      return m.group(0).strip()
  return None


def _fmt(x: float, commas: bool = False) -> str:
  """x as the solutions write numbers: an integer without ".0", else up to two decimals;
  `commas`: thousands separators (when the replaced number had them)."""
  if abs(x - round(x)) < 1e-9:
    return f"{int(round(x)):,}" if commas else str(int(round(x)))
  return f"{x:.2f}".rstrip("0")


def _num(text: str) -> Optional[float]:
  try:
    return float(text.replace(",", ""))
  except ValueError:
    return None


def parse_reference(answer: str) -> Optional[tuple[list[str], str]]:
  """(solution lines without the "####" line, the final answer) when every calculation
  annotation evaluates to its result, else None."""
  if "####" not in answer:
    return None
  body, final = answer.split("####", 1)
  lines = [ln for ln in body.strip().split("\n") if ln.strip()]
  for ln in lines:
    for expr, res in _CALC.findall(ln):
      v, r = evaluate_expr(expr), _num(res)
      if v is None or r is None or abs(v - r) > 1e-6 * max(1.0, abs(r)):
        return None
  return (lines, final.strip()) if lines else None


def visible(line: str) -> str:
  """A solution line as a reader sees it: the calculation annotations removed."""
  return _CALC.sub("", line)


def wrong_values(x: float, rng: random.Random) -> list[float]:
  """Wrong but plausible values for x (never x itself, never negative), in a seeded order."""
  digits = _fmt(x)
  cands = [x + 1, x - 1, x + 10, x - 10, x * 10, x / 10]
  if len(digits) >= 2 and "." not in digits and digits[-1] != digits[-2]:
    cands.append(float(digits[:-2] + digits[-1] + digits[-2]))
  out = [c for c in cands if c >= 0 and abs(c - x) > 1e-9 and abs(c - round(c, 2)) < 1e-9]
  rng.shuffle(out)
  return out


def _arithmetic(line: str, rng: random.Random) -> Optional[str]:
  """The line with its last calculation's result (annotation and visible number) wrong."""
  matches = list(_CALC.finditer(line))
  if not matches:
    return None
  m = matches[-1]
  after = line[m.end():]
  shown = _SHOWN.match(after)
  if not shown or _num(shown.group(1)) is None:
    return None
  value = _num(m.group(2))
  wrong = wrong_values(value, rng)
  if not wrong:
    return None
  w = _fmt(wrong[0])
  new_after = after[:shown.start(1)] + _fmt(wrong[0], "," in shown.group(1)) + \
      after[shown.end(1):]
  return line[:m.start()] + f"<<{m.group(1)}={w}>>" + new_after


def _copy(line: str, earlier: set, rng: random.Random) -> Optional[str]:
  """The line with an operand that repeats an earlier result copied wrongly (in the visible
  expression before the annotation and in the annotation), its result recomputed."""
  start = 0                        # the visible text since the previous annotation
  for m in _CALC.finditer(line):
    expr, prefix = m.group(1), line[start:m.start()]
    for op in _NUMBER.finditer(expr):
      v = _num(op.group(0))
      if v is None or _fmt(v) not in earlier:
        continue
      seen = [t for t in _NUMBER.finditer(prefix) if _num(t.group(0)) == v]
      if not seen:
        continue
      for w in wrong_values(v, rng):
        new_expr = expr[:op.start()] + _fmt(w) + expr[op.end():]
        res = evaluate_expr(new_expr)
        if res is None or res < 0 or abs(res - round(res, 2)) > 1e-9:
          continue
        t = seen[-1]
        new_prefix = prefix[:t.start()] + _fmt(w) + prefix[t.end():]
        after = line[m.end():]
        shown = _SHOWN.match(after)
        if not shown:
          break
        new_after = (after[:shown.start(1)] + _fmt(res, "," in shown.group(1))
                     + after[shown.end(1):])
        return (line[:start] + new_prefix + f"<<{new_expr}={_fmt(res)}>>" + new_after)
    start = m.end()
  return None


def corrupt(lines: list[str], kind: str, rng: random.Random) -> Optional[tuple[int, str]]:
  """(step index, corrupted line) of one `kind` error at a random eligible step, or None."""
  results, candidates = set(), []
  for i, ln in enumerate(lines):
    new = _arithmetic(ln, rng) if kind == "arithmetic" else _copy(ln, set(results), rng)
    if new is not None and new != ln:
      candidates.append((i, new))
    results.update(_fmt(_num(r)) for _, r in _CALC.findall(ln) if _num(r) is not None)
  return rng.choice(candidates) if candidates else None


def _rng(seed: int, key: str) -> random.Random:
  return random.Random(int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:16], 16))


def _item(row: dict, n: int, rng: random.Random, inject: bool, id_prefix: str
          ) -> tuple[Optional[dict], str]:
  """(item, what happened: "malformed_reference" | "no_eligible_step" | the error kind) of one
  GSM8K row: its reference as steps, with one injected error when `inject`."""
  parsed = parse_reference(row["answer"])
  if parsed is None:
    return None, "malformed_reference"
  lines, final = parsed
  kind, label, original = "none", -1, None
  if inject:
    first = rng.choice(KINDS)
    for k in (first, [x for x in KINDS if x != first][0]):
      got = corrupt(lines, k, rng)
      if got is not None:
        label, new = got
        original, kind = visible(lines[label]), k
        lines = lines[:label] + [new] + lines[label + 1:]
        break
    else:
      return None, "no_eligible_step"
  steps = [visible(ln).strip() for ln in lines] + [f"The answer is {final}."]
  return {"id": f"{id_prefix}-{n}", "generator": "gsm8k_reference", "problem": row["question"],
          "steps": steps, "final_answer_correct": True, "label": label, "error_kind": kind,
          "original_step": original, "answer": final}, kind


def build(rows: list[dict], seed: int = 0) -> tuple[list[dict], dict]:
  """(items, counts) from GSM8K rows {"question", "answer"}: half correct, half with one
  injected error (module docstring); counts of what was used and skipped."""
  items, counts = [], {"rows": len(rows), "malformed_reference": 0, "no_eligible_step": 0,
                       "none": 0, "arithmetic": 0, "copy": 0}
  for n, row in enumerate(rows):
    rng = _rng(seed, row["question"])
    item, what = _item(row, n, rng, rng.random() < 0.5, "gsm8k-test")
    counts[what] += 1
    if item is not None:
      items.append(item)
  return items, counts


def item_records(item: dict, separator: str = "\n") -> list[dict]:
  """PRM training records (`prm_jax.prm.data`: question, steps, mc) of one item: every prefix
  of its steps, labelled 1.0 before the injected error and 0.0 from it on (the steps as
  `prm_jax.evaluate` scores them: `separator` after every step but the last)."""
  steps = [s + separator for s in item["steps"][:-1]] + [item["steps"][-1]]
  bad = item["label"] if item["label"] >= 0 else len(steps)
  return [{"question_id": item["id"], "question": item["problem"], "steps": steps[:k],
           "mc": 1.0 if k <= bad else 0.0, "error_kind": item["error_kind"]}
          for k in range(1, len(steps) + 1)]


def training_records(rows: list[dict], seed: int = 0, id_prefix: str = "gsm8k-train",
                     separator: str = "\n") -> tuple[list[dict], dict]:
  """(records, counts): exactly labelled PRM training data from GSM8K rows (the train split:
  never the rows the evaluation set is drawn from). Every usable problem gives two solutions
  under one question: its reference (every step 1) and the reference with one injected error
  (1 before it, 0 from it on); their shared prefix is one set of records, so the error step
  and the reference's step at that index are siblings."""
  records, counts = [], {"rows": len(rows), "malformed_reference": 0, "no_eligible_step": 0,
                         "arithmetic": 0, "copy": 0, "records": 0}
  for n, row in enumerate(rows):
    rng = _rng(seed, row["question"])
    wrong, what = _item(row, n, rng, True, id_prefix)
    counts[what] += 1
    if wrong is None:
      continue
    right, _ = _item(row, n, rng, False, id_prefix)
    seen = set()
    for it in (right, wrong):
      for r in item_records(it, separator):
        if tuple(r["steps"]) not in seen:
          seen.add(tuple(r["steps"]))
          records.append(r)
  counts["records"] = len(records)
  return records, counts


def _read_rows(path: str) -> list[dict]:
  rows = []
  for n, rec in jsonl_records(path):
    if not isinstance(rec.get("question"), str) or not isinstance(rec.get("answer"), str):
      raise SystemExit(f"{path}:{n}: need string fields 'question' and 'answer'")
    rows.append(rec)
  return rows


def main(argv=None):
  fv = flags.FlagValues()
  flags.DEFINE_string("input", "../shared/data/gsm8k/test.jsonl", "GSM8K JSONL "
                      "({question, answer})", flag_values=fv)
  flags.DEFINE_string("output", None, "the JSONL to write", flag_values=fv, required=True)
  flags.DEFINE_integer("seed", 0, "draws which half is corrupted and how", flag_values=fv)
  flags.DEFINE_integer("num", 0, "first NUM rows only (0: all)", flag_values=fv)
  flags.DEFINE_bool("records", False, "write PRM training records instead (`training_records`: "
                    "each problem's reference and one injected error; --input the train split)",
                    flag_values=fv)
  flags.DEFINE_list("exclude", None, "--records: GSM8K JSONL files whose questions are left out "
                    "(default: test.jsonl beside --input, the split the evaluation set is drawn "
                    "from)", flag_values=fv)
  args = cli.parse_argv(fv, argv)
  rows = _read_rows(args.input)
  rows = rows[:args.num] if args.num else rows
  if not args.records:
    items, counts = build(rows, args.seed)
    write_jsonl_atomic(args.output, items)
    counts = dict(counts, written=len(items), output=args.output)
    print(json.dumps(counts))
    return items, counts
  exclude = args.exclude
  if exclude is None:
    beside = os.path.join(os.path.dirname(os.path.abspath(args.input)), "test.jsonl")
    exclude = [beside] if os.path.exists(beside) else []
  if os.path.abspath(args.input) in {os.path.abspath(p) for p in exclude}:
    raise SystemExit(f"--records: --input {args.input} is an excluded (evaluation) file")
  held = {normalize_question(r["question"]) for path in exclude for r in _read_rows(path)}
  kept = [r for r in rows if normalize_question(r["question"]) not in held]
  records, counts = training_records(kept, args.seed)
  write_jsonl_atomic(args.output, records)
  counts = dict(counts, excluded=len(rows) - len(kept), excluded_files=list(exclude),
                output=args.output)
  print(json.dumps(counts))
  return records, counts


if __name__ == "__main__":
  main()
