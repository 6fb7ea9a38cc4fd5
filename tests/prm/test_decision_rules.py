"""The searches' decision rules (mc>0, c of k, likelihood ratio) and OmegaPRM's boundary
re-check, on closed forms and scripted policies where the first error is known."""

import math

import pytest

from prm_jax.omegaprm import OmegaPRMConfig, ShepherdConfig, omegaprm_search, shepherd_search
from prm_jax.omegaprm.decision import judged_right
from prm_jax.omegaprm.tree import drive
from prm_jax.policy.base import Completion

GOLD = "42"


def is_correct(text, gold):
  return text.rstrip().endswith(f"ANSWER {gold}")


def sol(start, end, good=True):
  body = "".join(f"s{i}\n" for i in range(start + 1, end + 1))
  return body + ("ANSWER 42" if good else "ANSWER 0")


class Sequenced:
  """k completions from a prefix of t steps, table[t][j] of them correct on the j-th request
  for that prefix (the last entry repeats; missing t: none correct)."""

  def __init__(self, table, root_wrong=1, steps=8):
    self.table, self.root_wrong, self.steps = table, root_wrong, steps
    self.log, self.calls = [], {}

  def rollout(self, requests, n, *, seed):
    out = []
    for _, prefix in requests:
      t = prefix.count("\n")
      self.log.append((t, n))
      if prefix == "":
        texts = [sol(0, self.steps)] * (n - self.root_wrong) + [sol(0, self.steps, False)] * \
            self.root_wrong
      else:
        j = self.calls.get(t, 0)
        self.calls[t] = j + 1
        seq = self.table.get(t, [0])
        c = seq[min(j, len(seq) - 1)]
        texts = [sol(t, self.steps)] * c + [sol(t, self.steps, False)] * (n - c)
      out.append([Completion(x, len(x)) for x in texts])
    return out


def search(pol, **cfg):
  cfg = OmegaPRMConfig(search_limit=1, **cfg)
  res = drive({0: ("q", omegaprm_search("q", GOLD, is_correct, cfg))}, pol, seed=0)[0][0]
  return res, [t for t, _ in pol.log[1:]]


def test_rules_closed_form():
  assert judged_right("mc>0", 1, 8, k=8) and not judged_right("mc>0", 0, 8, k=8)
  assert not judged_right("c_of_k", 1, 8, k=8) and judged_right("c_of_k", 2, 8, k=8)
  assert not judged_right("c_of_k", 3, 16, k=8) and judged_right("c_of_k", 4, 16, k=8)
  # v = .5, rho = .05: log LR(c) = c ln 10 + (8 - c) ln(.5 / .95): c = 1 -> -2.19, c = 2 -> +.75
  assert 1 * math.log(10) + 7 * math.log(0.5 / 0.95) < 0 < 2 * math.log(10) + 6 * math.log(
      0.5 / 0.95)
  assert not judged_right("lrt", 1, 8, k=8, anchor_mc=0.5)
  assert judged_right("lrt", 2, 8, k=8, anchor_mc=0.5)
  # v = .9, rho = .09: c ln 10 + (8 - c) ln(.1 / .91) >= 0 <=> c >= 3.92
  assert not judged_right("lrt", 3, 8, k=8, anchor_mc=0.9)
  assert judged_right("lrt", 4, 8, k=8, anchor_mc=0.9)
  assert not judged_right("lrt", 0, 0, k=8)
  with pytest.raises(ValueError, match="OmegaPRMConfig.decision"):
    OmegaPRMConfig(decision="majority")
  with pytest.raises(ValueError, match="ShepherdConfig.recover_ratio"):
    ShepherdConfig(decision="lrt", recover_ratio=1.0)


def test_one_lucky_rollout_misleads_the_paper_rule_not_two_of_k():
  """First error at step 3; the wrong prefix of 4 steps has one lucky rollout of 8. The
  paper's rule goes right (probes 4, 6, 5: predicts step 5); 2-of-8 goes left (4, 2, 3)."""
  table = {1: [6], 2: [4], 4: [1]}
  res, probes = search(Sequenced(table))
  assert probes == [4, 6, 5] and res.localisations[0].predicted == 4
  res, probes = search(Sequenced(table), decision="c_of_k", min_correct=2)
  assert probes == [4, 2, 3] and res.localisations[0].predicted == 2
  res, probes = search(Sequenced(table, root_wrong=16), decision="lrt", recover_ratio=0.1)
  assert probes == [4, 2, 3] and res.localisations[0].predicted == 2   # v = root MC .5
  # the LRT reads the anchor's MC as a right prefix's success rate: from a root at 31/32
  # (v clipped to 15/16), 4 of 8 at step 2 is more likely a wrong prefix
  res, probes = search(Sequenced(table), decision="lrt", recover_ratio=0.1)
  assert probes == [4, 2, 1] and res.localisations[0].predicted == 1


def test_boundary_recheck_moves_left_when_the_last_right_prefix_fails_again():
  """2-of-8: step 4 looks right (2/8) then fails 0/8 on the re-check (2/16 < 2/8): the search
  moves left and finds step 3."""
  table = {1: [6], 2: [4], 4: [2, 0]}
  res, probes = search(Sequenced(table), decision="c_of_k", boundary_rollouts=8)
  assert probes[:3] == [4, 6, 5]                       # converged on (4, 5)
  assert probes[3:5] == [4, 5]                         # both boundary prefixes re-checked
  assert res.localisations[0].predicted == 2
  assert probes[5:] == [2, 3, 2, 3]                    # probed, then (2, 3) re-checked: stable
  s4 = next(s for s in res.states if len(s.pieces) == 4)
  assert (s4.correct, s4.rollouts) == (2, 16)


def test_boundary_recheck_moves_right_when_the_first_wrong_prefix_recovers():
  """2-of-8: step 6 looks wrong (1/8), the re-check gives 4/8 (5/16 >= 2/8): the error is
  further on, at the step 8 answer."""
  table = {1: [6], 2: [6], 4: [6], 5: [6], 6: [1, 4], 7: [5], 8: [0]}
  res, probes = search(Sequenced(table), decision="c_of_k", boundary_rollouts=8)
  assert probes[:3] == [4, 6, 5]
  assert res.localisations[0].predicted > 5
  assert 7 in probes[3:]
  # without the re-check the same data stops at step 6
  res0, _ = search(Sequenced(table), decision="c_of_k")
  assert res0.localisations[0].predicted == 5


def test_sequential_scan_stops_where_the_rule_says():
  table = {1: [6], 2: [1], 3: [0]}
  for rule, stop in (("mc>0", 3), ("c_of_k", 2)):
    pol = Sequenced(table)
    res = drive({0: ("q", shepherd_search("q", GOLD, is_correct, ShepherdConfig(
        mode="sequential", max_solutions=1, decision=rule)))}, pol, seed=0)[0][0]
    assert [t for t, _ in pol.log[1:]] == list(range(1, stop + 1))
    assert res.localisations[0].predicted == stop - 1
