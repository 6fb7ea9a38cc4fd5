"""Exact session metrics on hand-made sessions, ranking metrics against scikit-learn, Gini in
closed form, and the NLU checker the faithfulness and adherence metrics rest on."""

import math

import numpy as np
import pytest
from sklearn.metrics import ndcg_score

from crs_jax import catalogue, goals, metrics, nlu


def _item(i, genre="comedy", era="1990s", mood="dark", lang="French", pop=0.1):
  return catalogue.Item.of(f"i{i}", f"The Velvet Comet {i}", dict(
      genre=genre, era=era, length="short", mood=mood, language=lang), pop)


CAT = catalogue.Catalogue(tuple(_item(i, pop=0.1 * (5 - i)) for i in range(5)))
GOAL = goals.Goal(constraints={"genre": "comedy"}, likes={"mood": {"dark": 1.0}}, dislikes={})


def _rec(sid, turns, success_turn=None, acceptable=("i0", "i1"), target="i0"):
  return {"session_id": sid, "goal": GOAL.to_json(), "target": target,
          "acceptable": list(acceptable), "turns": turns, "success_turn": success_turn}


def _sys(items=(), kind="recommend", explanations=None, retrieved=()):
  return {"role": "system", "text": "x", "kind": kind, "items": list(items),
          "explanations": explanations or {}, "retrieved": list(retrieved)}


def _user(text, intent="inform", reactions=None):
  return {"role": "user", "text": text, "intent": intent, "reactions": reactions or {}}


@pytest.mark.parametrize("ranked,relevant,k", [
    (["a", "b", "c", "d"], {"b", "d"}, 3), (["a", "b"], {"a"}, 1), (["x", "y", "z"], {"q"}, 3),
    (["a", "b", "c", "d", "e"], {"a", "c", "e", "f", "g", "h"}, 4)])
def test_ndcg_equals_scikit_learn_and_recall_is_capped(ranked, relevant, k):
  universe = sorted(set(ranked) | relevant)
  # scikit-learn ranks by score: give ranked items decreasing scores, the rest below them
  scores = np.array([[len(ranked) - ranked.index(u) if u in ranked else -1 - i
                      for i, u in enumerate(universe)]], dtype=float)
  true = np.array([[1.0 if u in relevant else 0.0 for u in universe]])
  # scikit-learn's IDCG ranks every relevant item of the universe, as ours does
  assert metrics.ndcg_at_k(ranked, relevant, k) == pytest.approx(
      ndcg_score(true, scores, k=k) if true.sum() else 0.0)
  hits = len(set(ranked[:k]) & relevant)
  assert metrics.recall_at_k(ranked, relevant, k) == pytest.approx(
      hits / min(len(relevant), k))


def test_success_and_turns_on_hand_made_sessions():
  recs = [_rec("a", [], success_turn=1), _rec("b", [], success_turn=3), _rec("c", []),
          _rec("d", [], success_turn=8)]
  # a learned simulator can accept what its goal does not: d accepted i7 (not acceptable)
  for r, acc in zip(recs, ["i0", "i1", None, "i7"]):
    r["accepted"] = acc
  m = metrics.success_metrics(recs, turns=(1, 2, 4, 8))
  assert m == {"success@1": 0.25, "success@2": 0.25, "success@4": 0.5, "success@8": 0.75,
               "success": 0.75, "success_acceptable": 0.5, "mean_turns_to_success": 4.0}


def test_ranking_metrics_score_each_turns_full_ranking_and_the_last_retrieval():
  """Per recommendation turn: its slate, then its other candidates, against the acceptable
  items not shown before (i0, i1 here; i3 was rejected); target hit on the same ranking."""
  rec = _rec("a", [_sys(["i3"], retrieved=["i3", "i0"]), _user("no"),
                   _sys(["i1", "i3"], retrieved=["i1", "i2", "i0"])])
  m = metrics.ranking_metrics([rec], ks=(1, 2))
  # turn 1: [i3, i0] vs {i0, i1}; turn 2: [i1, i3, i2, i0] vs {i0, i1}
  assert m["recommendation_turns"] == 2
  assert m["ranking_recall@1"] == pytest.approx((0 + 1) / 2)
  assert m["ranking_recall@2"] == pytest.approx((0.5 + 0.5) / 2)
  assert m["ranking_ndcg@2"] == pytest.approx(
      ((1 / math.log2(3)) / (1 + 1 / math.log2(3)) + 1 / (1 + 1 / math.log2(3))) / 2)
  assert m["target_hit@1"] == 0 and m["target_hit@2"] == 0.5     # target i0: 2nd, then 4th
  assert m["retrieval_recall@1"] == 1.0 and m["retrieval_recall@2"] == 0.5
  assert m["retrieval_ndcg@2"] == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_a_perfect_ranking_scores_one_though_the_session_stops_at_acceptance():
  """The defect: rank metrics on the items shown in a session (which stops at acceptance) gave
  a perfect recommender 0.40. Each turn's own full ranking gives it 1."""
  rec = _rec("a", [_sys(["i0"], retrieved=["i0", "i1", "i2"]),
                   _user("yes", "accept", {"i0": "accept"})], success_turn=1)
  m = metrics.ranking_metrics([rec], ks=(1, 5))
  assert m["ranking_ndcg@5"] == 1.0 and m["ranking_recall@5"] == 1.0
  assert m["target_hit@1"] == 1.0


def test_explanation_faithfulness_is_exact():
  exps = {"i0": "The Velvet Comet 0 is a dark comedy from the 1990s.",          # true
          "i1": "A cheerful comedy in French.",                                 # cheerful: false
          "i2": "Not a horror film, and not in Korean.",                        # negated, true
          "i3": "You will love it."}                                            # no claim
  m = metrics.faithfulness([_rec("a", [_sys(explanations=exps)])], CAT)
  assert m["explanations"] == 4
  # "You will love it." claims nothing: not faithful (it was counted faithful before)
  assert m["explanation_faithful"] == 0.5 and m["explanation_grounded"] == 0.75
  assert m["explanation_claims_true"] == 0.75
  assert m["claim_precision"] == pytest.approx(7 / 8)     # 8 claims, "cheerful" false


def test_written_recommendations_are_checked_for_the_title_and_the_users_own_words():
  t0, t1 = CAT.by_id["i0"].title, CAT.by_id["i1"].title
  said = dict(_sys(["i0"], explanations={"i0": "It has the comedy you asked for."}),
              text=f"How about {t0}? It has the comedy you asked for.")
  wrong = dict(_sys(["i1"], explanations={"i1": "It is a dark film."}),   # dark: not asked
               text=f"How about {t0}? It is a dark film.")                  # names another
  m = metrics.faithfulness([_rec("a", [_user("A comedy, please."), said, _user("no"), wrong])],
                           CAT)
  assert m["recommendation_titled"] == 0.5 and m["explanation_user_grounded"] == 0.5
  assert m["explanation_faithful"] == 1.0
  assert t1 not in wrong["text"]


def test_simulator_metrics_catch_leaks_bad_mentions_and_wrong_acceptance():
  t0 = CAT.by_id["i0"].title
  turns = [_user(f"I want {t0}, a comedy."),                        # leak (not shown yet)
           _sys(["i2"]), _user("Not dark, please", "refine", {"i2": "reject"}),   # negates held
           _sys(["i0"]), _user(f"{t0} it is", "accept", {"i0": "accept"}),
           _sys(["i3"]), _user("I'd go for horror.", "accept", {"i3": "accept"})]  # unheld+wrong
  m = metrics.simulator_metrics([_rec("a", turns)], CAT,
                                forced={"a": ["inform", "refine", "explain"]})
  assert m["user_turns"] == 4 and m["goal_adherence"] == 0.5
  assert m["target_leak_rate"] == 1.0
  assert m["acceptance_agreement"] == pytest.approx(2 / 3)
  assert m["intent_accuracy"] == pytest.approx(2 / 3)


def test_no_leak_when_the_system_named_the_target_first():
  t0 = CAT.by_id["i0"].title
  rec = _rec("a", [_user("A comedy"), _sys(["i0"]), _user(f"{t0} it is", "accept",
                                                          {"i0": "accept"})])
  assert metrics.simulator_metrics([rec], CAT)["target_leak_rate"] == 0
  # an unshown acceptable title inside the shown one's ("Scarlet Horizon" in "The Scarlet
  # Horizon") is no leak; said on its own it is
  cat = catalogue.Catalogue((_item(0), catalogue.Item.of("j", "Velvet Comet 0", dict(
      genre="comedy", era="1990s", length="short", mood="dark", language="French"), 0.1)))
  shown = _rec("b", [_sys(["i0"]), _user(f"{t0} it is", "accept", {"i0": "accept"})],
               acceptable=("i0", "j"))
  assert metrics.simulator_metrics([shown], cat)["target_leak_rate"] == 0
  said = _rec("c", [_user("Velvet Comet 0, please"), _sys(["i0"])], acceptable=("i0", "j"))
  assert metrics.simulator_metrics([said], cat)["target_leak_rate"] == 1


def test_popularity_bias_gini_and_long_tail_in_closed_form():
  # 5 items by popularity i0 > ... > i4; head (top 20%) = {i0}; shown: i0 x2, i3 x1, i4 x1
  rec = _rec("a", [_sys(["i0"]), _sys(["i0"]), _sys(["i3", "i4"])])
  m = metrics.popularity_bias([rec], CAT)
  x = np.array([2, 0, 0, 1, 1], float)
  gini = np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) ** 2 * x.mean())
  assert m["gini"] == pytest.approx(gini) and m["long_tail_share"] == 0.5


@pytest.mark.parametrize("text,expected", [
    ("I want a comedy, not horror.", [("comedy", False), ("horror", True)]),
    ("Anything but French, please", [("French", True)]),
    ("Close, but ideally Spanish.", [("Spanish", False)]),
    ("I don't want long ones, a short sci-fi would do",
     [("long", True), ("short", False), ("sci-fi", False)]),
    ("I'd rather avoid anything dark.", [("dark", True)]),
    ("a light-hearted, medium-length drama", [("light-hearted", False),
                                               ("medium-length", False), ("drama", False)]),
    ("Enlightened dramatic longing", []),
])
def test_nlu_reads_values_and_negation(text, expected):
  assert [(m.value, m.negated) for m in nlu.mentions(text)] == expected


def test_asked_attribute():
  assert nlu.asked_attribute("Which decade do you prefer?") == "era"
  assert nlu.asked_attribute("What genre would you like?") == "genre"
  assert nlu.asked_attribute("How about this?") is None


def test_paired_success_on_hand_made_sessions():
  from crs_jax import paired
  a = [{"session_id": f"s{i}", "success_turn": t} for i, t in enumerate([2, None, 3, 9, 1])]
  b = [{"session_id": f"s{i}", "success_turn": t} for i, t in enumerate([2, 4, None, 8, 1])]
  b.append({"session_id": "s9", "success_turn": 1})           # not in a: not compared
  r = paired.paired_success(a, b, turns=8)
  # success@8: a = 1 0 1 0 1, b = 1 1 0 1 1 -> differences 0 +1 -1 +1 0
  assert r["sessions"] == 5 and r["a_success@8"] == 0.6 and r["b_success@8"] == 0.8
  assert abs(r["difference"] - 0.2) < 1e-12 and (r["gained"], r["lost"]) == (2, 1)
  assert abs(r["sign_test_p"] - 1.0) < 1e-12       # 2 of 3 discordant: two-sided p = 1
  assert r["lo"] <= 0.2 <= r["hi"] and -1 <= r["lo"] and r["hi"] <= 1
  # every discordant pair one way: p = 2 / 2**n
  r = paired.paired_success([dict(x, success_turn=None) for x in a], a)
  assert (r["gained"], r["lost"]) == (3, 0) and abs(r["sign_test_p"] - 2 / 2 ** 3) < 1e-12
  assert r["lo"] > 0
  with pytest.raises(ValueError, match="share no session id"):
    paired.paired_success(a, [{"session_id": "x", "success_turn": 1}])


def test_pooled_success_over_seeds_includes_seed_variance(tmp_path):
  """Pooled over training seeds: the mean over (seed, session) pairs; the seeds-then-sessions
  interval is wider than the sessions-only one when the seeds disagree, and a CLI run on pair
  files gives the same figures."""
  import json
  from crs_jax import paired
  def sets(a_ok, b_ok):
    return tuple([dict(_rec(f"s{i}", []), success_turn=1 if x else None)
                  for i, x in enumerate(ok)] for ok in (a_ok, b_ok))
  n = 40
  gain = sets([0] * n, [1] * (n // 2) + [0] * (n // 2))     # seed 0: B wins 20 sessions
  same = sets([1] * n, [1] * n)                              # seeds 1, 2: no difference
  r = paired.pooled_success([gain, same, same], resamples=4000)
  assert r["seeds"] == 3 and r["sessions"] == 3 * n
  assert r["difference"] == pytest.approx(20 / (3 * n)) and (r["gained"], r["lost"]) == (20, 0)
  assert [x["difference"] for x in r["per_seed"]] == [0.5, 0.0, 0.0]
  assert r["hi"] - r["lo"] > 2 * (r["hi_sessions"] - r["lo_sessions"])
  assert r["lo"] <= r["lo_sessions"] and r["lo"] == pytest.approx(0.0)  # all seeds may be "same"
  files = []
  for k, (a, b) in enumerate([gain, same, same]):
    for tag, recs in (("a", a), ("b", b)):
      f = tmp_path / f"{tag}{k}.jsonl"
      f.write_text("\n".join(json.dumps(x) for x in recs))
      files.append(str(f))
  out = paired.main(["--pooled"] + files)
  assert out["difference"] == r["difference"] and out["sessions"] == 3 * n
  with pytest.raises(Exception, match="pairs: 3 files"):
    paired.main(["--pooled"] + files[:3])


def test_intent_control_reports_chance_and_kappa_like_scikit_learn():
  """A simulator that ignores the control still agrees by chance: the chance level comes from
  the forced and produced intent frequencies, kappa equals scikit-learn's."""
  from sklearn.metrics import cohen_kappa_score
  rng = np.random.default_rng(0)
  intents = ["inform", "explain", "reject", "refine"]
  forced = list(rng.choice(intents, 400, p=[.4, .3, .2, .1]))
  ignoring = list(rng.choice(intents, 400, p=[.4, .3, .2, .1]))       # independent of forced
  m = metrics.intent_control(list(zip(forced, ignoring)))
  assert m["intent_kappa"] == pytest.approx(cohen_kappa_score(forced, ignoring))
  assert abs(m["intent_accuracy"] - m["intent_chance"]) < 0.06 and abs(m["intent_kappa"]) < 0.1
  assert m["intent_chance"] == pytest.approx(0.3, abs=0.03)      # .4^2 + .3^2 + .2^2 + .1^2
  obeying = [f if i % 2 else g for i, (f, g) in enumerate(zip(forced, ignoring))]
  m2 = metrics.intent_control(list(zip(forced, obeying)))
  assert m2["intent_kappa"] == pytest.approx(cohen_kappa_score(forced, obeying))
  assert m2["intent_kappa"] > 0.4
