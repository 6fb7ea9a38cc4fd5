"""PRM-guided step-level beam search on the simulated policy with an exact (oracle) scorer and
a scripted one: the beam keeps the best-scored steps, counts generated tokens exactly, and an
oracle PRM lifts accuracy far above a single sample's."""

import numpy as np
import pytest

from prm_jax.envs import arithmetic as A
from mode_jax.serve.api import Sample
from prm_jax.policy.simulated import SimulatedPolicy
from prm_jax.step_search import BeamConfig, beam_search, first_step


class OracleScorer:
  """Step probability 1 while the prefix is right, 0 from its first wrong step on."""

  def __init__(self, problems):
    self.by_q = {p.question: p for p in problems}

  def score(self, items):
    out = []
    for q, steps in items:
      fe = A.first_error(self.by_q[q], steps)
      out.append(np.array([float(fe is None or j < fe) for j in range(len(steps))]))
    return out


def test_first_step():
  assert first_step("a\nb\n", "\n") == ("a\n", False)
  assert first_step("The answer is 3.", "\n") == ("The answer is 3.", True)


def test_oracle_scorer_beam_beats_a_single_sample_and_counts_tokens():
  probs = A.make_problems(20, A.ArithmeticConfig(min_ops=6, max_ops=6), seed=4)
  pol = SimulatedPolicy(probs, p_error=0.2)
  res = beam_search(pol, OracleScorer(probs), [p.question for p in probs],
                    BeamConfig(beam_width=2, expand=4), seed=0)
  acc = np.mean([A.is_correct(r["solution"], p.answer) for r, p in zip(res, probs)])
  single = np.mean([A.is_correct(c[0].text, p.answer) for c, p in zip(
      pol.rollout([(p.question, "") for p in probs], 1, seed=0), probs)])
  assert acc >= 0.95 and single < 0.6          # (1 - .2)^6 = .26 per sample
  r = res[0]
  assert r["finished"] and r["rounds"] == 7     # 6 operation steps + the answer
  # every round, each of <= 2 beams drew 4 first steps: tokens = bytes of those steps
  assert 7 * len(r["solution"].splitlines()[0]) <= r["tokens"] <= 7 * 2 * 4 * 40
  again = beam_search(pol, OracleScorer(probs), [p.question for p in probs[:3]],
                      BeamConfig(beam_width=2, expand=4), seed=0)
  assert [x["solution"] for x in again] == [x["solution"] for x in res[:3]]   # batching


class Scripted:
  """From any prefix: continuations "good\\n..." / "bad\\n..." / a final answer."""

  def __init__(self, texts):
    self.texts = texts

  def rollout(self, requests, n, *, seed):
    return [[Sample(t, len(t)) for t in self.texts[:n]] for _ in requests]


class ByWord:
  """"good" steps .9, "bad" .1, the answer .95 after a good step and .3 on its own."""

  def score(self, items):
    def p(steps, j):
      if steps[j].startswith("ANSWER"):
        return 0.95 if j and steps[j - 1].startswith("good") else 0.3
      return 0.9 if steps[j].startswith("good") else 0.1
    return [np.array([p(steps, j) for j in range(len(steps))]) for _, steps in items]


def test_beam_keeps_the_best_scored_steps_and_stops_when_nothing_can_overtake():
  pol = Scripted(["good\nrest", "bad\nrest", "ANSWER"])
  (r,) = beam_search(pol, ByWord(), ["q"], BeamConfig(beam_width=1, expand=3, max_steps=5),
                     seed=0)
  # round 1: ANSWER alone (.3) is finished, "good" (.9) lives on; round 2: good+ANSWER
  # (.9 * .95 = .855) >= the best live good+good (.81): stop
  assert r["solution"] == "good\nANSWER" and r["finished"]
  assert r["score"] == pytest.approx(0.855) and r["rounds"] == 2
  assert r["tokens"] == pytest.approx(2 * (5 + 4 + 6))
  (r,) = beam_search(pol, ByWord(), ["q"], BeamConfig(beam_width=1, expand=3, max_steps=5,
                                                      aggregate="last"), seed=0)
  assert r["rounds"] == 5 and r["score"] == pytest.approx(0.95)   # "last": no early stop
  with pytest.raises(ValueError, match="BeamConfig.aggregate"):
    BeamConfig(aggregate="max")
