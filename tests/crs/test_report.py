"""The conversation report: two samples of the same simulator are indistinguishable (AUC near
0.5, MAUVE high), a collapsed simulator is caught (duplicates, low diversity, lost intents,
high discriminator AUC), and leakage of training conversations is measured exactly."""

import copy

import pytest

from crs_jax import baselines, catalogue, report, rule_simulator, session

CAT = catalogue.make_catalogue(200, seed=0)


def _sessions(seed, n=80, **sim_kw):
  return session.run_sessions(baselines.RuleRecommender(CAT),
                              rule_simulator.RuleSimulator(CAT, **sim_kw), CAT,
                              num_sessions=n, seed=seed)


@pytest.fixture(scope="module")
def reference():
  return _sessions(1)


def test_same_simulator_is_indistinguishable(reference):
  rep = report.conversation_report(_sessions(2), reference, CAT, train=_sessions(3, 20),
                                   encoder=report.hashing_encoder())
  assert rep["discriminator_auc"]["lo"] < 0.5 + 0.1 and rep["discriminator_auc"]["value"] < 0.65
  assert rep["mauve"]["mean"] > 0.8
  assert rep["intent_coverage"]["uncovered_reference_values"] == []
  assert rep["generated"]["goal_coverage"] > 0.5
  assert rep["leakage"]["exact"]["value"] == 0.0
  md = report.markdown(rep)
  assert "| distinct_2 |" in md and "MAUVE" in md


def test_collapsed_simulator_is_caught(reference):
  one = _sessions(2, n=1)[0]
  collapsed = []
  for k in range(40):
    r = copy.deepcopy(one)
    r["session_id"] = session.session_id(k)
    collapsed.append(r)
  rep = report.conversation_report(collapsed, reference, CAT, train=collapsed[:1],
                                   encoder=report.hashing_encoder())
  gen, ref = rep["generated"], rep["reference"]
  assert gen["duplicates"]["duplicate_share"] == pytest.approx(39 / 40)
  assert gen["distinct_2"] < ref["distinct_2"] and gen["self_bleu"] > ref["self_bleu"]
  assert gen["vendi"] < 1.01 < ref["vendi"]
  assert rep["intent_coverage"]["uncovered_reference_values"]
  assert rep["discriminator_auc"]["value"] > 0.9
  assert rep["leakage"]["exact"]["value"] == 1.0


def test_chitchat_heavy_simulator_shows_in_intent_shares(reference):
  chatty = _sessions(4, p_chitchat=0.5)
  rep = report.conversation_report(chatty, reference, CAT)
  rows = {r["value"]: r for r in rep["intent_coverage"]["rows"]}
  assert rows["chitchat"]["generated_share"] > 3 * rows["chitchat"]["reference_share"]
  assert rep["generated"]["goal_coverage"] < rep["reference"]["goal_coverage"] + 0.05
