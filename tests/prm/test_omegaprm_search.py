"""OmegaPRM selection, binary search and bookkeeping, the Math-Shepherd baselines, occurrence
counts and the decision rules (mc>0, c of k, likelihood ratio, boundary re-check), pinned on
hand-built cases with scripted policies."""

import math

import pytest

from prm_jax.envs import arithmetic as A
from prm_jax.policy.simulated import SimulatedPolicy
from prm_jax.omegaprm import (OmegaPRMConfig, ShepherdConfig, omegaprm_search,
                              run_math_shepherd, run_omegaprm, shepherd_search)
from prm_jax.omegaprm.decision import judged_right
from prm_jax.omegaprm.search import q_value, u_value
from prm_jax.omegaprm.tree import drive
from mode_jax.serve.api import Sample

GOLD = "42"


def is_correct(text, gold):
  return text.rstrip().endswith(f"ANSWER {gold}")


def sol(start, end, good=True):
  """Steps start+1..end of an 8-step solution, then its answer."""
  body = "".join(f"s{i}\n" for i in range(start + 1, end + 1))
  return body + ("ANSWER 42" if good else "ANSWER 0")


class Scripted:
  """Completions by the number of pieces in the prefix: table[t] = correct count of n (the rest
  incorrect); `root` overrides the completions of the empty prefix."""

  def __init__(self, table, root=None, steps=8):
    self.table, self.root, self.steps, self.log = table, root, steps, []

  def rollout(self, requests, n, *, seed):
    out = []
    for _, prefix in requests:
      self.log.append((prefix, n))
      if prefix == "" and self.root is not None:
        texts = self.root(n)
      else:
        t = prefix.count("\n")
        c = round(self.table.get(t, 0.0) * n)
        texts = [sol(t, self.steps)] * c + [sol(t, self.steps, False)] * (n - c)
      out.append([Sample(x, len(x)) for x in texts])
    return out


def test_q_and_u_literal_values():
  cfg = OmegaPRMConfig()
  assert q_value(0.5, 250, cfg) == pytest.approx(0.5 ** 0.5 * 0.9 ** 0.5)
  assert q_value(1.0, 0, cfg) == 1.0 and q_value(0.0, 500, cfg) == pytest.approx(0.45)
  assert u_value(0, 0, cfg) == 0.0
  assert u_value(1, 4, cfg) == pytest.approx(0.125 * 2 / 2)
  assert u_value(3, 9, OmegaPRMConfig(c_puct=1.0)) == pytest.approx(0.75)
  with pytest.raises(ValueError, match="OmegaPRMConfig.alpha"):
    OmegaPRMConfig(alpha=0.0)


def test_paper_eight_step_example_probes_4_6_7():
  """One incorrect root rollout whose first error is step 7: MC(4) = .25, MC(6) = .5,
  MC(7) = 0 -> probes at 4, 6, 7 and the first error at step 7 (index 6)."""
  root = lambda n: [sol(0, 8)] * (n - 1) + ["".join(f"s{i}\n" for i in range(1, 9)) + "ANSWER 0"]
  pol = Scripted({4: 0.25, 6: 0.5, 7: 0.0}, root=root)
  results, _ = drive({0: ("q", omegaprm_search("q", GOLD, is_correct,
                                               OmegaPRMConfig(search_limit=1)))}, pol, seed=0)
  res = results[0]
  assert [p.count("\n") for p, _ in pol.log] == [0, 4, 6, 7]
  assert [n for _, n in pol.log] == [32, 8, 8, 8]
  assert len(res.localisations) == 1 and res.localisations[0].predicted == 6
  by_len = {len(s.pieces): s for s in res.states[1:]}
  assert {t: by_len[t].mc for t in by_len} == {4: 0.25, 6: 0.5, 7: 0.0}
  assert by_len[6].parent == by_len[4].id and by_len[7].parent == by_len[6].id
  assert res.cost.rollouts == 32 + 3 * 8 and res.cost.policy_calls == 4


def test_first_error_at_the_last_step_makes_a_terminal_state():
  root = lambda n: [sol(0, 8)] * (n - 1) + [sol(0, 8, good=False)]
  pol = Scripted({t: 0.5 for t in range(9)}, root=root)   # 9 pieces: 8 steps + the answer
  res = drive({0: ("q", omegaprm_search("q", GOLD, is_correct,
                                        OmegaPRMConfig(search_limit=1)))}, pol, seed=0)[0][0]
  assert [p.count("\n") for p, _ in pol.log] == [0, 4, 6, 7, 8]   # all MC > 0: go right
  assert res.localisations[0].predicted == 8          # the answer piece (index 8 of 9)
  term = [s for s in res.states if s.terminal]
  assert len(term) == 1 and term[0].mc == 0.0 and term[0].rollouts == 0


def test_root_filter_drops_all_right_and_all_wrong():
  for frac in (0.0, 1.0):
    pol = Scripted({0: frac})
    recs, stats = run_omegaprm("q", GOLD, pol, is_correct, OmegaPRMConfig(), seed=0)
    assert recs == [] and stats["filtered"] and stats["rollouts"] == 32
  recs, stats = run_omegaprm("q", GOLD, Scripted({0: 1.0}), is_correct,
                             OmegaPRMConfig(filter_root=False), seed=0)
  assert not stats["filtered"] and recs == []         # no incorrect rollout: empty pool


def test_selection_order_pool_removal_and_shared_prefixes():
  """The pool is consumed in argmax(Q + U) order, each (state, rollout) once; identical rollouts
  share states, so no prefix is ever rolled out twice; the search stops on an empty pool."""
  prob = A.Problem(id="p", start=2, ops=tuple(("+", i) for i in range(1, 8)))
  pol = SimulatedPolicy([prob], p_error=0.15, p_recover=0.2)
  cfg = OmegaPRMConfig(search_limit=10_000, root_rollouts=16, k=4)
  gen = omegaprm_search(prob.question, prob.answer, A.is_correct, cfg)
  res = drive({0: (prob.question, gen)}, _Logged(pol), seed=1)[0][0]
  prefixes = [p for p, _ in _Logged.log]
  assert len(prefixes) == len(set(prefixes))          # shared states: no duplicate rollouts
  picked = [(l.state_id, l.solution) for l in res.localisations]
  assert res.iterations == len(picked) > 3
  # each distinct (state, incorrect rollout) selected once; the pool ran dry before the limit
  assert len(set(picked)) == len(picked) and res.iterations < cfg.search_limit


class _Logged:
  log = []

  def __init__(self, pol):
    self.pol = pol
    _Logged.log = []

  def rollout(self, requests, n, *, seed):
    _Logged.log.extend((p, n) for _, p in requests)
    return self.pol.rollout(requests, n, seed=seed)


def test_u_term_breaks_ties_towards_unvisited_states():
  """Two states with the same MC and rollout lengths: after the first is selected (N = 1), the
  next pick comes from the other state (U favours N = 0)."""
  root = lambda n: [sol(0, 8)] * (n // 2) + [sol(0, 8, False)] * (n - n // 2)
  pol = Scripted({t: 0.5 for t in range(1, 9)}, root=root)
  res = drive({0: ("q", omegaprm_search("q", GOLD, is_correct,
                                        OmegaPRMConfig(search_limit=2)))}, pol, seed=0)[0][0]
  first, second = res.localisations
  assert first.state_id == 0                    # root rollouts are the only candidates at first
  assert second.state_id != 0                   # Q equal (MC .5, same length); U(root) smaller
  root_n = res.states[0].visits
  assert root_n == 1 and math.isclose(u_value(root_n, 1, OmegaPRMConfig()), 0.0625)


def test_math_shepherd_per_step_and_sequential():
  root = lambda n: [sol(0, 8)] * (n - 1) + [sol(0, 8, False)]
  table = {t: (0.5 if t < 5 else 0.0) for t in range(9)}
  pol = Scripted(table, root=root)
  recs, st = run_math_shepherd("q", GOLD, pol, is_correct, ShepherdConfig(), seed=0)
  assert st["rollouts"] == 32 + 8 * 8 and st["localised_solutions"] == 1   # steps 1..8 of 9
  mcs = {r["last_step"]: r["mc"] for r in recs}
  assert mcs == {**{i: 0.5 for i in range(4)}, **{i: 0.0 for i in range(4, 9)}}
  assert sum(r["terminal"] for r in recs) == 1
  pol = Scripted(table, root=root)
  recs, st = run_math_shepherd("q", GOLD, pol, is_correct,
                               ShepherdConfig(mode="sequential"), seed=0)
  assert st["rollouts"] == 32 + 5 * 8                                    # stops at prefix 5
  assert sorted(r["last_step"] for r in recs) == [0, 1, 2, 3, 4]
  assert [p.count("\n") for p, _ in pol.log] == [0, 1, 2, 3, 4, 5]


def test_localisation_matches_exact_first_error_without_noise():
  """With a noise-free completer (p_recover = 0 and correct prefixes always succeed), the
  binary search finds exactly the checker's first error."""
  probs = A.make_problems(5, A.ArithmeticConfig(min_ops=9, max_ops=15, max_value=1000), seed=2)
  noisy = SimulatedPolicy(probs, p_error=0.08, p_recover=0.0)
  clean = SimulatedPolicy(probs, p_error=0.0, p_recover=0.0)

  class RootNoisy:   # wrong solutions come from the noisy root; probes from the clean policy
    def rollout(self, requests, n, *, seed):
      return [(noisy if p == "" else clean).rollout([(q, p)], n, seed=[s])[0]
              for (q, p), s in zip(requests, seed)]

  total = 0
  for p in probs:
    gen = omegaprm_search(p.question, p.answer, A.is_correct,
                          OmegaPRMConfig(search_limit=5, filter_root=False))
    res = drive({0: (p.question, gen)}, RootNoisy(), seed=0)[0][0]
    for loc in res.localisations:
      assert loc.predicted == A.first_error(p, loc.solution)
      total += 1
  assert total > 0


def test_bench_runs_and_matches_closed_form_without_recovery(tmp_path, capsys):
  from benchmarks import omegaprm as bench
  out = tmp_path / "rows.json"
  bench.main(["--questions=6", "--ops=7", "--searches=3", "--settings=0.1:0.0",
              "--variants=omegaprm,omegaprm lrt+check,math_shepherd,sequential",
              f"--json={out}"])
  import json
  rows = json.loads(out.read_text())
  assert [r["method"] for r in rows] == ["omegaprm", "omegaprm lrt+check", "math_shepherd",
                                         "sequential"]
  for r in rows:       # no recovery: a wrong prefix never succeeds
    assert r["fp_rate"] == 0.0 and r["fp_closed_form"] == 0.0 and r["localised"] > 0
    lo, hi = r["localisation_ci"]
    assert lo <= r["localisation_acc"] <= hi
  assert rows[2]["rollouts_per_solution"] > rows[0]["rollouts_per_solution"]
  assert rows[1]["rollouts_per_solution"] > rows[0]["rollouts_per_solution"]   # the re-check
  text = capsys.readouterr().out
  assert "omegaprm lrt+check: accuracy" in text and "the goal" in text
  with pytest.raises(KeyError, match="unknown 'nope'"):
    bench.run_method("nope", [], None, 8, 1, 0)


def test_token_span_pieces_are_probed_at_span_boundaries():
  from prm_jax import steps
  enc = lambda s: list(s.encode())
  dec = lambda ids: bytes(ids).decode()
  bad = "abcdefghijklmnopANSWER 0"          # 24 bytes -> 6 pieces of 4 tokens

  class Spans:
    log = []

    def rollout(self, requests, n, *, seed):
      out = []
      for _, prefix in requests:
        self.log.append(prefix)
        texts = (["ANSWER 42"] * (n - 1) + [bad]) if prefix == "" else (
            ["ANSWER 42"] * (n // 2) + ["ANSWER 0"] * (n - n // 2))
        out.append([Sample(t, len(t)) for t in texts])
      return out

  pol = Spans()
  gen = omegaprm_search("q", GOLD, is_correct, OmegaPRMConfig(search_limit=1),
                        splitter=steps.by_token_spans(enc, dec, 4))
  res = drive({0: ("q", gen)}, pol, seed=0)[0][0]
  assert [len(p) for p in pol.log] == [0, 12, 16, 20]        # pieces 3, 4 (of 6), then 5
  assert res.localisations[0].predicted == 5                   # MC > 0 everywhere: last piece


def test_record_root_rollouts_labels_complete_solutions_both_ways():
  root = lambda n: [sol(0, 8)] * (n - 1) + [sol(0, 8, good=False)]
  pol = Scripted({t: 0.5 for t in range(9)}, root=root)
  recs, _ = run_omegaprm("q", GOLD, pol, is_correct,
                         OmegaPRMConfig(search_limit=1, record_root_rollouts=True), seed=0)
  term = sorted((r["mc"], len(r["steps"])) for r in recs if r["terminal"])
  assert term == [(0.0, 9), (1.0, 9)]     # one right, one wrong; the search reuses the wrong one
  recs, _ = run_math_shepherd("q", GOLD, Scripted({t: 0.5 for t in range(9)}, root=root),
                              is_correct, ShepherdConfig(record_root_rollouts=True), seed=0)
  assert sorted(r["mc"] for r in recs if r["terminal"]) == [0.0, 1.0]


def test_math_shepherd_counts_every_prefix_of_every_annotated_solution():
  """Two identical wrong root rollouts: one set of rollouts per prefix (shared states), but
  each of the 9 records stands for 2 labelled points, as without de-duplication."""
  root = lambda n: [sol(0, 8)] * (n - 2) + [sol(0, 8, good=False)] * 2
  pol = Scripted({t: 0.5 for t in range(1, 9)}, root=root)
  recs, stats = run_math_shepherd("q", GOLD, pol, is_correct, ShepherdConfig(), seed=0)
  assert stats["rollouts"] == 32 + 8 * 8                 # the second solution re-uses states
  assert len(recs) == 9 and [r["occurrences"] for r in recs] == [2] * 9


def test_omegaprm_probe_of_a_shared_prefix_counts_it_again():
  """Two wrong root rollouts that agree up to step 7: the second binary search probes the
  same prefixes 4, 6, 7 (no new rollouts) and counts each a second time."""
  other = "".join(f"s{i}\n" for i in range(1, 8)) + "x8\nANSWER 0"
  root = lambda n: [sol(0, 8)] * (n - 2) + [sol(0, 8, good=False), other]
  pol = Scripted({4: 0.25, 6: 0.5, 7: 0.0}, root=root)
  res = drive({0: ("q", omegaprm_search("q", GOLD, is_correct,
                                        OmegaPRMConfig(search_limit=2)))}, pol, seed=0)[0][0]
  assert res.iterations == 2 and res.cost.rollouts == 32 + 3 * 8
  recs = res.records("q")
  assert {len(r["steps"]): r["occurrences"] for r in recs} == {4: 2, 6: 2, 7: 2}


# The decision rules (mc>0, c of k, likelihood ratio) and the boundary re-check

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
      out.append([Sample(x, len(x)) for x in texts])
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
