"""The conversation report: two samples of the same simulator are indistinguishable (AUC near
0.5, MAUVE high), a collapsed simulator is caught (duplicates, low diversity, lost intents,
high discriminator AUC), and leakage of training conversations is measured exactly."""

import copy

import pytest

from crs_jax import baselines, catalogue, report, rule_simulator, session
from mode_jax.dataeval import embed, render

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
                                   encoder=embed.HashingEncoder())
  auc = rep["distribution"]["discriminator_auc"]
  assert auc["lo"] < 0.5 + 0.1 and auc["value"] < 0.65
  assert rep["distribution"]["mauve"]["mean"] > 0.8
  conv = rep["conversations"]
  assert conv["intent_coverage"]["uncovered_reference_values"] == []
  assert conv["generated"]["goal_coverage"] > 0.5
  assert conv["leakage"]["exact"]["value"] == 0.0
  md = report.markdown(rep)
  assert "| distinct_2 |" in md and "MAUVE" in md
  # the shared renderer takes the section: one report format for every application
  full = render.markdown(rep, (report.section(CAT),))
  assert "## Diversity" in full and "## Conversations" in full and "| distinct_2 |" in full


def test_collapsed_simulator_is_caught(reference):
  one = _sessions(2, n=1)[0]
  collapsed = []
  for k in range(40):
    r = copy.deepcopy(one)
    r["session_id"] = session.session_id(k)
    collapsed.append(r)
  rep = report.conversation_report(collapsed, reference, CAT, train=collapsed[:1],
                                   encoder=embed.HashingEncoder())
  conv = rep["conversations"]
  gen, ref = conv["generated"], conv["reference"]
  assert gen["duplicates"]["duplicate_share"] == pytest.approx(39 / 40)
  assert gen["distinct_2"] < ref["distinct_2"] and gen["self_bleu"] > ref["self_bleu"]
  div = rep["diversity"]
  assert div["generated"]["vendi"]["value"] < 1.01 < div["reference"]["vendi"]["value"]
  assert conv["intent_coverage"]["uncovered_reference_values"]
  # folds are grouped by normalised text, so the 40 copies are held out together (no copy is
  # recognised by its twin in the training folds): still far from 0.5
  assert rep["distribution"]["discriminator_auc"]["value"] > 0.8
  assert conv["leakage"]["exact"]["value"] == 1.0


def test_chitchat_heavy_simulator_shows_in_intent_shares(reference):
  chatty = _sessions(4, p_chitchat=0.5)
  rep = report.conversation_report(chatty, reference, CAT)
  conv = rep["conversations"]
  rows = {r["value"]: r for r in conv["intent_coverage"]["rows"]}
  assert rows["chitchat"]["generated_share"] > 3 * rows["chitchat"]["reference_share"]
  assert conv["generated"]["goal_coverage"] < conv["reference"]["goal_coverage"] + 0.05
