"""Arithmetic env (exact first errors), step splitters, graders on real GSM8K solutions."""

import json
import os
import random

import pytest

from conftest import SHARED_DATA
from prm_jax import graders, steps
from prm_jax.envs import arithmetic as A
from prm_jax.policy.simulated import SimulatedPolicy

PROBLEM = A.Problem(id="p", start=7, ops=(("+", 5), ("*", 3), ("-", 4), ("/", 8)))


def test_problem_text_and_solution():
  assert PROBLEM.question == ("Start with 7. Add 5, then multiply by 3, then subtract 4, "
                              "then divide by 8. What is the result?")
  assert PROBLEM.solution == "7 + 5 = 12\n12 * 3 = 36\n36 - 4 = 32\n32 / 8 = 4\nThe answer is 4."
  assert PROBLEM.answer == "4" and PROBLEM.num_steps == 5
  assert A.Problem.from_json(json.loads(json.dumps(PROBLEM.to_json()))) == PROBLEM


@pytest.mark.parametrize("text,first,answer_ok", [
    ("7 + 5 = 12\n12 * 3 = 36\n36 - 4 = 32\n32 / 8 = 4\nThe answer is 4.", None, True),
    ("7+5=12\n12 x 3 = 36\n36 - 4 = 32\n32 ÷ 8 = 4\nthe answer is 4", None, True),
    ("7 + 5 = 12\n12 * 3 = 35\n35 - 4 = 31\n31 / 8 = 3\nThe answer is 3.", 1, False),
    # a wrong step, then a "recovery" to the true value: answer right, process wrong
    ("7 + 5 = 12\n12 * 3 = 35\n36 - 4 = 32\n32 / 8 = 4\nThe answer is 4.", 1, True),
    ("7 + 5 = 12\n12 * 4 = 48\n48 - 4 = 44\n44 / 8 = 5\nThe answer is 5.", 1, False),  # wrong op
    ("7 + 5 = 12\n36 - 4 = 32\n32 / 8 = 4\nThe answer is 4.", 1, True),                 # skipped
    ("7 + 5 = 12\n12 * 3 = 36\n36 - 4 = 32\n32 / 8 = 4\nThe answer is 5.", 4, False),
    ("7 + 5 = 12\n12 * 3 = 36\n36 - 4 = 32\n32 / 8 = 4\nThe answer is 4.\nmore", 5, True),
    ("7 + 5 = 12\n12 * 3 = 36\n", None, False),                                         # partial
    ("", None, False),
])
def test_checker_first_error(text, first, answer_ok):
  c = A.check(PROBLEM, text)
  assert c.first_error == first and c.answer_correct == answer_ok


def test_generator_respects_config_and_seed():
  cfg = A.ArithmeticConfig(min_ops=2, max_ops=16, max_value=500, max_factor=6)
  probs = A.make_problems(200, cfg, seed=3)
  assert probs == A.make_problems(200, cfg, seed=3) and probs != A.make_problems(200, cfg, seed=4)
  assert {len(p.ops) for p in probs} >= {2, 16}
  for p in probs:
    assert all(0 <= v <= 500 for v in p.values)
    assert A.check(p, p.solution).first_error is None and A.is_correct(p.solution, p.answer)
  with pytest.raises(ValueError, match="min_ops/max_ops"):
    A.ArithmeticConfig(max_ops=17)
  with pytest.raises(ValueError, match="ArithmeticConfig.ops"):
    A.ArithmeticConfig(ops=("*",))


def test_splitters_are_lossless():
  text = "a\nbb\n\nccc"
  assert steps.by_delimiter()(text) == ["a\n", "bb\n", "\n", "ccc"]
  assert steps.by_delimiter()("a\nb\n") == ["a\n", "b\n"]
  enc = lambda s: list(s.encode())
  dec = lambda ids: bytes(ids).decode("utf-8", errors="ignore")
  for t in ["12 + 3 = 15\nThe answer is 15.", "é→x" * 7, ""]:
    pieces = steps.by_token_spans(enc, dec, 4)(t)
    assert "".join(pieces) == t
  assert steps.by_token_spans(enc, dec, 4)("abcdefghij") == ["abcd", "efgh", "ij"]
  assert steps.span_for(160) == 10 and steps.span_for(3) == 1


def test_simulated_policy_closed_form_label_noise():
  """MC > 0 from k rollouts: FN rate (1 - v)^k on correct prefixes, FP rate 1 - (1 - rho)^k on
  wrong ones, with v and rho from the simulator's closed form."""
  prob = A.Problem(id="q", start=3, ops=(("+", 4), ("*", 2), ("+", 1), ("-", 2)))
  pol = SimulatedPolicy([prob], p_error=0.4, p_recover=0.3)
  good = "3 + 4 = 7\n"
  bad = "3 + 4 = 8\n8 * 2 = 16\n"
  k, trials = 8, 1500
  for prefix, wrong in ((good, False), (bad, True)):
    t = len(A.split_lines(prefix))
    p_pos = 1 - (1 - pol.value(prob, t, wrong)) ** k
    pos = 0
    for seed in range(trials):
      comps = pol.rollout([(prob.question, prefix)], k, seed=seed)[0]
      pos += any(A.is_correct(prefix + c.text, prob.answer) for c in comps)
    se = (p_pos * (1 - p_pos) / trials) ** 0.5
    assert abs(pos / trials - p_pos) < 4 * se + 1e-3, (prefix, pos / trials, p_pos)
  assert pol.value(prob, 1, False) == pytest.approx(0.6 ** 3)
  assert pol.value(prob, 2, True) == pytest.approx(0.3 * 0.6 ** 2)


def test_simulated_policy_is_batch_invariant_and_validates():
  probs = A.make_problems(3, seed=1)
  pol = SimulatedPolicy(probs, p_error=0.2)
  reqs = [(p.question, "") for p in probs]
  together = pol.rollout(reqs, 4, seed=5)
  assert [pol.rollout([r], 4, seed=5)[0] for r in reqs] == together
  with pytest.raises(KeyError, match="no problem with question"):
    pol.rollout([("what?", "")], 1, seed=0)
  with pytest.raises(ValueError, match="step boundaries"):
    pol.rollout([(probs[0].question, "1 + ")], 1, seed=0)


def test_gsm8k_grader_literals():
  ok = graders.gsm8k_is_correct
  assert ok("so 9 * 2 = 18\n#### 18", "18")
  assert ok("The answer is $1,000.00.", "1000")
  assert ok("The answer is 18 dollars.", "18.0")
  assert ok("She makes 18 every day.", "18")            # no marker: the last number
  assert not ok("#### 17", "18") and not ok("no number", "18")
  assert ok("The answer is -3.5", "-3.5") and not ok("The answer is 3.5", "-3.5")


def test_math_grader_uses_math_verify():
  ok = graders.math_is_correct
  assert ok("Thus $x = \\boxed{\\frac{3}{4}}$.", "\\frac{3}{4}")
  assert ok("The final answer is $\\boxed{0.75}$", "\\frac{3}{4}")
  assert not ok("The final answer is $\\boxed{\\frac{2}{3}}$", "\\frac{3}{4}")
  with pytest.raises(ValueError, match="grader 'nope'"):
    graders.get("nope")


def test_gsm8k_grader_on_real_solutions():
  path = os.path.join(SHARED_DATA, "gsm8k", "test.jsonl")
  if not os.path.exists(path):
    pytest.skip(f"{path} not present (shared data absent)")
  rows = [json.loads(line) for line in open(path, encoding="utf-8") if line.strip()][:300]
  rng = random.Random(0)
  for r in rows:
    gold = r["answer"].rsplit("####", 1)[1].strip()
    assert graders.gsm8k_is_correct(r["answer"], gold), r["answer"]
    as_text = r["answer"].rsplit("####", 1)[0] + f"The answer is {gold}."
    assert graders.gsm8k_is_correct(as_text, gold)
    wrong = str(graders.gsm8k_answer(r["answer"]) + rng.choice([-2, -1, 1, 3]))
    assert not graders.gsm8k_is_correct(r["answer"], wrong)


def test_simulated_format_variants_are_read_by_the_checker():
  probs = A.make_problems(5, A.ArithmeticConfig(min_ops=6, max_ops=9), seed=2)
  pol = SimulatedPolicy(probs, p_error=0.0, vary_format=True)
  texts = {p.question: [c.text for c in pol.rollout([(p.question, "")], 6, seed=0)[0]]
           for p in probs}
  for p in probs:
    assert len(set(texts[p.question])) > 1             # different spellings of one solution
    for t in texts[p.question]:
      c = A.check(p, t)
      assert c.first_error is None and c.complete and c.answer_correct


def test_math_grader_escaped_dollar_gold_and_the_last_box_counts():
  from prm_jax.graders import last_boxed, math_is_correct
  # A currency sign is not a math delimiter: the gold must still be wrapped and parsed.
  assert math_is_correct(r"The total is \boxed{18.90}", r"\$18.90")
  assert math_is_correct(r"The total is \boxed{\$18.90}", r"\$18.90")
  assert not math_is_correct(r"The total is \boxed{18.80}", r"\$18.90")
  # Two boxes: the last one is the answer.
  assert math_is_correct(r"First \boxed{3}, corrected: \boxed{5}", "5")
  assert not math_is_correct(r"First \boxed{3}, corrected: \boxed{5}", "3")
  assert last_boxed(r"a \boxed{\frac{1}{2}} b") == r"\boxed{\frac{1}{2}}"
  assert math_is_correct(r"so \boxed{\frac{1}{2}}", r"\frac12")
