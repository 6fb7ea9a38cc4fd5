"""The LLM judge: ProcessBench's critic protocol (tagged paragraphs from 0, last \\boxed{}
index, -1 for none, majority of parsable answers) and, with a critic that answers by the exact
checker, the same consensus / exact labels as the exact judge, in one backend call."""

import re

import ml_collections
import numpy as np
import pytest

from prm_jax.envs import arithmetic as A
from prm_jax.envs import llm_judge as J
from mode_jax.serve.api import Sample
from prm_jax.prm import label_sources as LS


def test_prompt_tags_paragraphs_from_zero():
  p = J.judge_prompt("What is 2+2?", ["2 + 2 = 4\n", "The answer is 4."])
  assert ("[Math Problem]\n\nWhat is 2+2?\n\n[Solution]\n\n<paragraph_0>\n2 + 2 = 4\n"
          "</paragraph_0>\n\n<paragraph_1>\nThe answer is 4.\n</paragraph_1>\n\n") in p
  assert p.rstrip().endswith("inside \\boxed{}.")


def test_parse_and_vote():
  assert J.parse_index("step 1 is wrong: \\boxed{1} ... so \\boxed{ 2 }") == 2   # the last
  assert J.parse_index("\\boxed{-1}") == -1
  assert J.parse_index("\\boxed{two}") is None and J.parse_index("no answer") is None
  assert J.vote([2, 1, 2, None]) == 2
  assert J.vote([3, 1, None]) == 1                   # a tie: the smallest index
  assert J.vote([None, None]) is None


class CheckerCritic:
  """A backend that critiques like an oracle: reads the tagged paragraphs back out of the
  prompt and answers the exact checker's first error (or 'no idea' for other questions)."""

  def __init__(self, garble_every: int = 0):
    self.prompts, self.garble_every = [], garble_every

  def complete(self, prompts, n=1, *, seeds=None, **sampling):
    self.prompts.append(list(prompts))
    out = []
    for k, p in enumerate(prompts):
      q = p.split("[Math Problem]\n\n", 1)[1].split("\n\n[Solution]", 1)[0]
      steps = [s + "\n" for s in re.findall(r"<paragraph_\d+>\n(.*?)\n</paragraph_\d+>", p,
                                            re.S)]
      prob = A.parse_question(q)
      if prob is None or (self.garble_every and k % self.garble_every == 0):
        text = "I cannot tell."
      else:
        fe = A.first_error(prob, steps)
        text = f"Paragraph by paragraph... \\boxed{{{-1 if fe is None else fe}}}"
      out.append([Sample(text, 10)] * n)
    return out


def _records():
  probs = A.make_problems(12, A.ArithmeticConfig(min_ops=3, max_ops=3), seed=4)
  rng = np.random.default_rng(0)
  recs = []
  for prob in probs:
    good = [prob.step_text(i) + "\n" for i in range(prob.num_steps)]
    bad = good[:1] + [prob.step_text(1, result=prob.values[2] + 1) + "\n"]
    for steps in (good[:1], good[:2], bad, good[:2]):          # one prefix twice
      recs.append({"question": prob.question, "steps": steps, "mc": float(rng.choice([0, .5]))})
  recs.append({"question": "not arithmetic", "steps": ["x"], "mc": 0.25})
  return recs


@pytest.mark.parametrize("source", ["exact", "consensus"])
def test_an_oracle_critic_gives_the_exact_judges_labels(source):
  recs = _records()
  critic = CheckerCritic()
  judge = J.LLMJudge(critic, samples=3)
  got, info = LS.apply(recs, source, judge)
  want, want_info = LS.apply(recs, source, "arithmetic")
  assert got == want
  assert {k: info[k] for k in ("kept", "dropped_unjudged", "dropped_disagree")} == {
      k: want_info[k] for k in ("kept", "dropped_unjudged", "dropped_disagree")}
  assert info["judge"] == "LLMJudge" and info["dropped_unjudged"] == 1
  assert judge.calls == 1 and len(critic.prompts[0]) == 12 * 3 + 1     # duplicates once


def test_unparsable_or_out_of_range_answers_leave_a_prefix_unjudged():
  recs = _records()[:8]
  judge = J.LLMJudge(CheckerCritic(garble_every=2))
  v = judge.verdicts(recs)
  assert v.count(None) >= 3 and set(v) <= {0, 1, None}

  class Far:
    def complete(self, prompts, n=1, *, seeds=None, **sampling):
      return [[Sample("\\boxed{7}", 1)] * n for _ in prompts]
  assert J.LLMJudge(Far()).verdicts(recs[:2]) == [None, None]   # no paragraph 7


def test_config_errors():
  from prm_jax.prm.train import make_judge
  pcfg = ml_collections.ConfigDict(dict(labels="consensus", judge="llm",
                                        judge_llm=dict(url="", model="")))
  with pytest.raises(ValueError, match="judge_llm.url"):
    make_judge(pcfg)
  assert make_judge(ml_collections.ConfigDict(dict(labels="mc", judge="llm"))) == "llm"
  with pytest.raises(ValueError, match="must contain"):
    J.LLMJudge(CheckerCritic(), template="no slots")


def _processbench_items(n=10):
  """ProcessBench-style items of the arithmetic env: half right (-1), half with a wrong step."""
  probs = A.make_problems(n, A.ArithmeticConfig(min_ops=3, max_ops=3), seed=5)
  items = []
  for k, prob in enumerate(probs):
    steps = [prob.step_text(i) + "\n" for i in range(prob.num_steps)]
    fe = -1
    if k % 2:
      steps[1] = prob.step_text(1, result=prob.values[2] + 1) + "\n"
      fe = 1
    items.append({"question": prob.question, "steps": steps, "first_error": fe})
  return items


def test_judge_scores_follow_processbench_and_count_unparsed_as_wrong():
  from prm_jax import evaluate
  items = _processbench_items()
  assert {it["first_error"] for it in items} == {-1, 1}
  perfect = evaluate.judge_scores(J.LLMJudge(CheckerCritic()), items)
  assert perfect == {"acc_err": 1.0, "acc_cor": 1.0, "f1": 1.0, "erroneous": 5, "correct": 5,
                     "unparsed": 0}
  # every second item's completion has no boxed index: it is wrong, not skipped
  garbled = evaluate.judge_scores(J.LLMJudge(CheckerCritic(garble_every=2)), items)
  assert garbled["unparsed"] == 5
  assert garbled["acc_cor"] == 0.0 and garbled["acc_err"] == 1.0 and garbled["f1"] == 0.0


def test_evaluate_takes_a_prm_or_a_judge_not_both(tmp_path):
  from prm_jax import evaluate
  for argv in (["--data=x.jsonl"], ["--data=x.jsonl", "--prm=p", "--judge_url=http://h"],
               ["--data=x.jsonl", "--judge_url=http://h", "--critic=gsm8k_calc"]):
    with pytest.raises(SystemExit, match="give one of --prm"):
      evaluate.main(argv)
  with pytest.raises(SystemExit, match="--scores_out needs --prm"):
    evaluate.main(["--data=x.jsonl", "--critic=gsm8k_calc", "--scores_out=s.jsonl"])
