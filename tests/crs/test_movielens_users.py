"""MovieLens-grounded users: goals read off held-out targets (hand-made catalogue), and sessions
of every baseline on the real MovieLens-100k catalogue (skipped when recbole's files are absent):
users accept exactly their targets, nothing they rated before is recommended, no title is
leaked, the oracle always succeeds, and a killed run resumes to the same records."""

import json
import math

import pytest

import helpers
from crs_jax import catalogue, metrics, movielens, movielens_users, nlu


def _cat():
  def it(i, genres, decade, pop):
    return catalogue.Item.of(str(i), f"Film {i}", {"genre": genres, "decade": decade}, pop)
  return catalogue.Catalogue((it(1, ["Drama", "War"], "1990s", .3), it(2, ["Drama"], "1980s", .2),
                              it(3, ["Comedy"], "1990s", .1), it(4, ["Horror"], "1990s", .05),
                              it(5, ["Horror", "Comedy"], "1970s", .05),
                              it(6, ["Drama", "Romance"], "1990s", .3)))


def test_goal_is_read_off_the_targets_and_the_low_rated_history():
  cat = _cat()
  R = movielens.Rating
  hist = [R("u", "4", 1, 1), R("u", "5", 2, 2), R("u", "3", 5, 3)]
  g = movielens_users.goal_of(["1", "2", "6"], hist, cat)
  # Drama in 3/3 targets; War and Romance in 1/3 (< half); 1990s in 2/3
  assert g.likes == {"genre": {"Drama": 1.0}, "decade": {"1990s": 0.6667}}
  assert g.dislikes == {"genre": {"Horror": 1.0}}    # mean 1.5 over 2; Comedy has a 5 too
  assert g.constraints == {}
  j = movielens_users.judgement_of(["3", "6"], cat)
  assert j.acceptable == {"3", "6"} and j.ranked == ("6", "3") and j.target == "6"
  assert j.utilities["6"] == 1.0 and j.utilities["1"] == 0.0
  # no value held by half: the most frequent one alone
  g2 = movielens_users.goal_of(["3", "4"], [], cat)
  assert g2.likes["genre"] == {"Comedy": 0.5, "Horror": 0.5} and g2.dislikes == {}


def test_titles_are_masked_as_whole_words_only():
  # MovieLens has a film called "M": masking it inside words made "Drama" unreadable
  assert nlu.mask_titles("Something Drama, please.", ["M"]) == "Something Drama, please."
  assert nlu.mask_titles("I loved M, and Heat.", ["M", "Heat"]).split() == ["I", "loved", ",",
                                                                            "and", "."]


def test_movielens_values_are_read_with_its_schema():
  schema = _cat().schema
  ms = nlu.mentions("Not Horror, I want Drama from the 1990s.", schema)
  assert [(m.value, m.negated) for m in ms] == [("Horror", True), ("Drama", False),
                                                ("1990s", False)]
  assert nlu.asked_attribute("Which decade would you like?", schema) == "decade"


@pytest.fixture(scope="module")
def ml():
  if movielens.default_dir() is None:
    helpers.missing_install("MovieLens-100k absent: pip install --no-deps recbole==1.2.1")
  data = movielens.load()
  split = movielens.holdout(data.ratings, min_rating=4, fraction=0.2)
  return data, split, movielens.catalogue(data, split)


def test_catalogue_popularity_counts_histories_only(ml):
  data, split, cat = ml
  assert len(cat) == 1682 and cat.schema.multi == {"genre"}
  assert cat.by_id["1"].values("genre") == ("Animation", "Children's", "Comedy")
  hist = [r for rs in split.history.values() for r in rs]
  n50 = sum(r.item == "50" for r in hist)
  assert math.isclose(cat.by_id["50"].popularity, n50 / len(hist))
  assert n50 < sum(r.item == "50" for r in data.ratings)     # the held-out ratings left out


def test_every_baseline_runs_on_grounded_users_and_resumes(ml, tmp_path):
  data, split, cat = ml
  res = movielens_users.run(str(tmp_path), num_users=30, seed=1, log=lambda m: None)
  assert set(res) == set(movielens_users.SYSTEMS)
  assert res["oracle"]["success@8"] == 1.0 and res["oracle"]["target_hit@1"] == 1.0
  assert res["random"]["success@8"] < res["oracle"]["success@8"]
  for name in movielens_users.SYSTEMS:
    recs = [json.loads(l) for l in open(tmp_path / "sessions" / f"{name}.jsonl")]
    assert len(recs) == 30 and all(r["user_id"] in split.targets for r in recs)
    for r in recs:
      assert set(r["acceptable"]) == split.targets[r["user_id"]]
      seen = set(r["history"])
      assert seen == {x.item for x in split.history[r["user_id"]]}
      shown = [i for t in r["turns"] if t["role"] == "system" for i in t.get("items", ())]
      assert not seen & set(shown)
      if r["accepted"] is not None:
        assert r["accepted"] in r["acceptable"]
    sim = metrics.simulator_metrics(recs, cat)
    assert sim["target_leak_rate"] == 0 and sim["goal_adherence"] == 1.0
    assert sim["acceptance_agreement"] == 1.0 and sim["intent_text_agreement"] == 1.0
    fa = metrics.faithfulness(recs, cat)
    assert fa["explanation_faithful"] == 1.0
  table = (tmp_path / "report.md").read_text()
  assert "| oracle | 30 | " in table
  # a killed run: the last line torn, one system's file gone -> the same records back
  p = tmp_path / "sessions" / "rule.jsonl"
  before = p.read_text()
  p.write_text(before[:len(before) - 40])
  (tmp_path / "sessions" / "popularity.jsonl").unlink()
  again = movielens_users.run(str(tmp_path), num_users=30, seed=1, log=lambda m: None)
  assert p.read_text() == before and again == res


def test_the_llm_system_needs_a_server_and_reads_the_catalogues_attributes(ml):
  from crs_jax import text
  data, split, cat = ml
  with pytest.raises(ValueError, match="needs --served_url"):
    movielens_users.make_system("llm", cat, split, data)
  assert text.parse_dm("Which decade do you prefer?", cat.schema)[:2] == ("ask", "decade")
  assert text.parse_dm("Which genre do you prefer?", cat.schema)[:2] == ("ask", "genre")
  assert text.item_line(cat.by_id["1"]) == "Toy Story: Animation and Children's and Comedy, 1990s"


def test_a_slate_shows_k_unseen_movies_and_the_user_takes_any_target_among_them(ml, tmp_path):
  data, split, cat = ml
  one = movielens_users.run(str(tmp_path / "one"), systems=("popularity", "random"),
                            num_users=30, seed=1, log=lambda m: None)
  three = movielens_users.run(str(tmp_path / "three"), systems=("popularity", "random"),
                              num_users=30, seed=1, slate=3, log=lambda m: None)
  recs = [json.loads(l) for l in open(tmp_path / "three" / "sessions" / "popularity.jsonl")]
  for r in recs:
    seen = set(r["history"])
    shown = []
    for t in r["turns"]:
      if t["role"] == "system" and t["kind"] == "recommend":
        assert len(t["items"]) == 3 and not set(t["items"]) & (seen | set(shown))
        shown += t["items"]
    if r["accepted"] is not None:
      assert r["accepted"] in r["acceptable"]
  # popularity with a slate of 3 shows in each turn the movies of 3 one-movie turns
  assert three["popularity"]["success@1"] >= one["popularity"]["success@1"]
  assert three["popularity"]["success@8"] >= one["popularity"]["success@8"]
  with pytest.raises(ValueError, match="slate must be >= 1"):
    movielens_users.make_system("random", cat, split, data, slate=0)
