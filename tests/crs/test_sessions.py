"""The session runner with the rule simulator and the baselines: the oracle always succeeds,
random matches its closed-form chance, records do not depend on batching, a run killed with
SIGKILL resumes without losing or duplicating sessions, and the simulator is controllable."""

import json
import math
import os
import subprocess
import sys

import pytest

from crs_jax import baselines, catalogue, metrics, rule_simulator, session

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CAT = catalogue.make_catalogue(200, seed=0)


def _run(rec, sim=None, **kw):
  sim = sim or rule_simulator.RuleSimulator(CAT)
  kw.setdefault("num_sessions", 60)
  return session.run_sessions(rec, sim, CAT, seed=kw.pop("seed", 0), **kw)


def test_oracle_succeeds_at_the_first_turn_and_rule_simulator_is_exact():
  recs = _run(baselines.OracleRecommender(CAT), num_sessions=100)
  m = metrics.all_metrics(recs, CAT)
  assert m["success@2"] == 1.0 > m["success@1"]     # some users ask "why?" before accepting
  quiet = rule_simulator.RuleSimulator(CAT, p_explain=0.0)
  assert metrics.success_metrics(_run(baselines.OracleRecommender(CAT), quiet))["success@1"] == 1
  assert m["retrieval_recall@10"] == 1.0 and m["explanation_faithful"] == 1.0
  assert m["ranking_ndcg@5"] == 1.0 and m["target_hit@1"] == 1.0
  assert m["goal_adherence"] == 1.0 and m["target_leak_rate"] == 0.0
  assert m["acceptance_agreement"] == 1.0 and m["intent_text_agreement"] == 1.0
  rule = metrics.simulator_metrics(_run(baselines.RuleRecommender(CAT), num_sessions=100), CAT)
  assert rule["intent_text_agreement"] == 1.0


def test_random_matches_its_closed_form_chance():
  sim = rule_simulator.RuleSimulator(CAT, p_explain=0.0, p_chitchat=0.0)
  t, n = 8, 300
  recs = _run(baselines.RandomRecommender(CAT), sim, num_sessions=n, max_turns=t, seed=3)
  N = len(CAT)
  chance = [1 - math.comb(N - len(r["acceptable"]), t) / math.comb(N, t) for r in recs]
  expected = sum(chance) / n
  se = math.sqrt(sum(p * (1 - p) for p in chance)) / n
  observed = metrics.success_metrics(recs, turns=(t,))[f"success@{t}"]
  assert abs(observed - expected) < 3.5 * se, (observed, expected, se)
  assert all(r["num_system_turns"] == (r["success_turn"] or t) for r in recs)


@pytest.mark.parametrize("name", sorted(baselines.BASELINES))
def test_records_do_not_depend_on_batching(name):
  rec = baselines.BASELINES[name](CAT)
  assert _run(rec, num_sessions=12) == _run(rec, num_sessions=12, batch_size=5)


def test_rule_recommender_beats_popularity_and_random():
  succ = {n: metrics.success_metrics(_run(baselines.BASELINES[n](CAT), num_sessions=80))["success"]
          for n in ("random", "popularity", "rule")}
  assert succ["rule"] > succ["popularity"] > succ["random"], succ


def test_forced_intents_are_realised_when_admissible():
  forced = {session.session_id(k): ["chitchat", "explain", "accept"] for k in range(30)}
  recs = _run(baselines.OracleRecommender(CAT), num_sessions=30, forced_intents=forced.get)
  m = metrics.simulator_metrics(recs, CAT, forced)
  assert m["intent_accuracy"] == 1.0 and m["goal_adherence"] == 1.0
  assert m["acceptance_agreement"] == 1.0
  # reactions follow the utility even when told otherwise: a forced "reject" of the oracle's
  # (acceptable) item is not realised
  forced = {session.session_id(k): ["inform", "reject"] for k in range(30)}
  recs = _run(baselines.OracleRecommender(CAT), num_sessions=30, forced_intents=forced.get)
  m = metrics.simulator_metrics(recs, CAT, forced)
  assert m["intent_accuracy"] == 0.5 and m["acceptance_agreement"] == 1.0


_WORKER = """
import os, signal, sys
sys.path.insert(0, {root!r})
from crs_jax import baselines, catalogue, rule_simulator, session
cat = catalogue.make_catalogue(200, seed=0)
class Dying(baselines.RuleRecommender):
  calls = 0
  def respond(self, sessions):
    Dying.calls += 1
    if Dying.calls == {die_at}:
      os.kill(os.getpid(), signal.SIGKILL)
    return super().respond(sessions)
session.run_sessions(Dying(cat), rule_simulator.RuleSimulator(cat), cat, num_sessions=20,
                     seed=0, batch_size=4, out_path={path!r})
"""


def test_killed_run_resumes_without_losing_or_duplicating_sessions(tmp_path):
  path = str(tmp_path / "sessions.jsonl")
  proc = subprocess.run([sys.executable, "-c", _WORKER.format(root=ROOT, die_at=14, path=path)],
                        capture_output=True, text=True)
  assert proc.returncode == -9, proc.stderr
  before = [json.loads(l)["session_id"] for l in open(path)]
  assert 0 < len(before) < 20
  with open(path, "a") as f:
    f.write('{"session_id": "s000')                 # a torn last line, as a crash leaves
  resumed = _run(baselines.RuleRecommender(CAT), num_sessions=20, batch_size=4, out_path=path)
  assert resumed == _run(baselines.RuleRecommender(CAT), num_sessions=20)
  ids = [json.loads(l)["session_id"] for l in open(path)]
  assert sorted(ids) == [session.session_id(k) for k in range(20)] and ids[:len(before)] == before


def test_malformed_session_file_names_line_and_field(tmp_path):
  recs = _run(baselines.OracleRecommender(CAT), num_sessions=3)
  recs[1]["turns"][1]["kind"] = "shout"
  path = tmp_path / "sessions.jsonl"
  path.write_text("".join(json.dumps(r) + "\n" for r in recs))
  with pytest.raises(session.SessionFileError,
                     match=r"sessions\.jsonl:2: field 'turns\[1\]': system turn kind 'shout'"):
    session.read_sessions(str(path))
  del recs[1]["goal"]
  path.write_text("".join(json.dumps(r) + "\n" for r in recs))
  with pytest.raises(session.SessionFileError, match=r"sessions\.jsonl:2: missing field 'goal'"):
    session.read_sessions(str(path))


def test_sessions_play_a_population_of_users_brought_from_outside():
  """`users=`: session k plays users[k], whose acceptable set is theirs (here: the goal's 5th-7th
  best items, which the catalogue's own judgement would not accept), not re-derived from the
  goal; the oracle finds it, records carry the user id, and too few users is an error."""
  import dataclasses
  import numpy as np
  from crs_jax import goals
  users, seed = [], 100
  while len(users) < 6:
    seed += 1
    goal = goals.sample_goal(CAT, np.random.default_rng(seed))
    j = goals.judge(goal, CAT)
    if len(j.ranked) < 7:
      continue
    k, mine = len(users), j.ranked[4:7]
    users.append(session.User(goal, dataclasses.replace(j, acceptable=frozenset(mine),
                                                        target=mine[0],
                                                        ranked=mine + j.ranked[:4]),
                              user_id=f"u{k}"))
  recs = session.run_sessions(baselines.OracleRecommender(CAT),
                              rule_simulator.RuleSimulator(CAT, p_explain=0.0), CAT,
                              users=users, seed=3)
  assert [r["user_id"] for r in recs] == [f"u{k}" for k in range(6)]
  assert [r["target"] for r in recs] == [u.judgement.target for u in users]
  assert all(r["acceptable"] == sorted(u.judgement.acceptable) for r, u in zip(recs, users))
  assert all(r["success_turn"] == 1 and r["accepted"] == u.judgement.target
             for r, u in zip(recs, users))
  with pytest.raises(ValueError, match="only 6 users"):
    session.run_sessions(baselines.OracleRecommender(CAT), rule_simulator.RuleSimulator(CAT),
                         CAT, users=users, num_sessions=7)
  bad = dataclasses.replace(users[0].judgement, target="nope")
  with pytest.raises(ValueError, match="target 'nope'"):
    session.User(users[0].goal, bad)
