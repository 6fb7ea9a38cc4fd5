"""The synthetic catalogue: seeded, Zipf popularity, text whose attribute mentions read back
exactly, JSONL I/O errors that name the file, line and field; goals judged exactly."""

import json
import math

import numpy as np
import pytest

from crs_jax import catalogue, goals, nlu


def test_catalogue_is_seeded_unique_and_zipf():
  a, b = catalogue.make_catalogue(300, seed=4), catalogue.make_catalogue(300, seed=4)
  assert a == b and a != catalogue.make_catalogue(300, seed=5)
  assert len({it.title for it in a.items}) == 300 == len(a.by_id)
  pop = np.sort([it.popularity for it in a.items])[::-1]
  ranks = np.arange(1, 301)
  np.testing.assert_allclose(pop, (1 / ranks) / (1 / ranks).sum(), rtol=1e-12)


def test_titles_name_no_attribute_and_descriptions_read_back_exactly():
  cat = catalogue.make_catalogue(2000, seed=0)
  for it in cat.items:
    assert nlu.mentions(it.title) == [], it.title
    assert nlu.positive_values(it.description) == set(it.attributes().items()), it.description
    assert nlu.negative_values(it.description) == set()


def test_titles_stay_unique_at_retrieval_scale():
  items = catalogue.make_items(20000, seed=1)
  assert len({it.title for it in items}) == 20000


def test_extended_catalogue_adds_items_and_rejects_reused_ids():
  cat = catalogue.make_catalogue(50, seed=0)
  more = cat.extended(catalogue.make_items(10, seed=1, start=50))
  assert len(more) == 60 and more.items[:50] == cat.items
  with pytest.raises(catalogue.CatalogueError, match="duplicate item id 'item0'"):
    cat.extended(catalogue.make_items(5, seed=1, start=0))


def test_round_trip(tmp_path):
  cat = catalogue.make_catalogue(40, seed=2)
  path = str(tmp_path / "items.jsonl")
  catalogue.write_catalogue(cat, path)
  assert catalogue.read_catalogue(path) == cat


def _flat(r):
  """The flat synthetic form (attributes as top-level fields), as files were written before
  free attributes."""
  r = dict(r)
  r.update(r.pop("attributes"))
  return r


@pytest.mark.parametrize("flat,edit,message", [
    (True, lambda r: r.pop("genre"), r":2: missing field 'genre'"),
    (True, lambda r: r.update(genre="polka"), r":2: field 'genre' is 'polka', not one of"),
    (False, lambda r: r.pop("attributes"), r":2: missing field 'attributes'"),
    (False, lambda r: r.update(attributes=["comedy"]), r":2: field 'attributes' must be an obj"),
    (False, lambda r: r["attributes"].update(genre=""), r":2: field 'attributes.genre' must be"),
    (False, lambda r: r["attributes"].update(genre=["x", 3]), r":2: field 'attributes.genre'"),
    (False, lambda r: r.update(popularity="high"), r":2: field 'popularity' must be a number"),
    (False, lambda r: r.update(minutes=9.5), r":2: field 'minutes' must be an integer"),
    (False, lambda r: r.update(colour="red"), r":2: unknown field 'colour'"),
    (False, lambda r: r.update(id="item0"), r":2: field 'id': duplicate 'item0' \(first on line 1\)"),
])
def test_malformed_catalogue_names_file_line_and_field(tmp_path, flat, edit, message):
  rows = [it.to_json() for it in catalogue.make_catalogue(3, seed=0).items]
  rows = [_flat(r) for r in rows] if flat else rows
  edit(rows[1])
  path = tmp_path / "items.jsonl"
  path.write_text("".join(json.dumps(r) + "\n" for r in rows))
  with pytest.raises(catalogue.CatalogueError, match=str(path).replace(".", r"\.") + message):
    catalogue.read_catalogue(str(path))


def test_flat_synthetic_files_read_as_before(tmp_path):
  cat = catalogue.make_catalogue(20, seed=3)
  path = tmp_path / "items.jsonl"
  path.write_text("".join(json.dumps(_flat(it.to_json())) + "\n" for it in cat.items))
  back = catalogue.read_catalogue(str(path))
  assert back == cat and back.schema == catalogue.SYNTHETIC


def test_free_attributes_multi_values_round_trip_and_schema_is_read_off_the_items(tmp_path):
  items = (catalogue.Item.of("1", "Toy Story", {"genre": ["Animation", "Comedy"], "decade": "1990s"},
                             0.5, description="toys come alive"),
           catalogue.Item.of("2", "Heat", {"genre": "Crime", "decade": "1990s"}, 0.3),
           catalogue.Item.of("3", "Alien", {"genre": ["Horror", "Sci-Fi"], "decade": "1970s",
                                            "studio": "Fox"}, 0.2))
  cat = catalogue.Catalogue(items)
  s = cat.schema
  assert s.names == ("genre", "decade", "studio") and s.multi == {"genre"}
  assert s.values("genre") == ("Animation", "Comedy", "Crime", "Horror", "Sci-Fi")
  assert items[0].has("genre", "Comedy") and not items[1].has("genre", "Comedy")
  assert items[0].value("genre") == "Animation and Comedy" and items[1].values("studio") == ()
  path = str(tmp_path / "ml.jsonl")
  catalogue.write_catalogue(cat, path)
  assert catalogue.read_catalogue(path) == cat
  with pytest.raises(catalogue.CatalogueError, match="item 'x': attributes"):
    catalogue.Catalogue(items + (catalogue.Item.of("x", "X", {"genre": "Polka"}, 0.1),), s)
  grown = cat.extended([catalogue.Item.of("4", "Fargo", {"genre": "Crime", "decade": "1990s"}, .1)])
  assert grown.schema == s                              # fits: kept
  assert "Western" in cat.extended([catalogue.Item.of("5", "Unforgiven", {"genre": "Western"},
                                                      .1)]).schema.values("genre")
  with pytest.raises(KeyError, match="unknown attribute 'mood'"):
    s.values("mood")


def test_invalid_json_line_is_named(tmp_path):
  path = tmp_path / "items.jsonl"
  path.write_text(json.dumps(catalogue.make_catalogue(1, 0).items[0].to_json()) + "\n{oops\n")
  with pytest.raises(catalogue.CatalogueError, match=r"items\.jsonl:2: invalid JSON"):
    catalogue.read_catalogue(str(path))


def test_judgement_is_exact_on_a_hand_made_catalogue():
  def item(i, genre, mood, pop):
    return catalogue.Item.of(f"i{i}", f"T{i}", dict(genre=genre, era="1990s", length="short",
                             mood=mood, language="French"), pop)
  cat = catalogue.Catalogue((item(0, "comedy", "dark", 0.1), item(1, "comedy", "cheerful", 0.2),
                             item(2, "drama", "cheerful", 0.3), item(3, "comedy", "tense", 0.4),
                             item(4, "comedy", "cheerful", 0.05)))
  g = goals.Goal(constraints={"genre": "comedy"}, likes={"mood": {"cheerful": 1.0}},
                 dislikes={"mood": {"dark": 1.0}}, accept_k=2)
  j = goals.judge(g, cat)
  assert j.utilities["i2"] == -math.inf and j.utilities["i0"] == -1.0
  assert j.ranked == ("i1", "i4", "i3", "i0")        # utility, then popularity
  assert j.acceptable == {"i1", "i4"} and j.target == "i1"
  g3 = goals.Goal(constraints={"genre": "comedy"}, likes={}, dislikes={}, accept_k=1)
  assert goals.judge(g3, cat).acceptable == {"i0", "i1", "i3", "i4"}   # ties included


def test_sampled_goals_are_feasible_and_profiles_name_history_values():
  cat = catalogue.make_catalogue(200, seed=0)
  rng = np.random.default_rng(0)
  for _ in range(50):
    g = goals.sample_goal(cat, rng)
    j = goals.judge(g, cat)
    assert len(j.acceptable) >= min(g.accept_k, len(j.ranked)) and j.ranked
    assert not set(g.constraints) & set(g.dislikes)
    hist = goals.history(g, cat, rng)
    named = nlu.positive_values(goals.profile_text(hist, cat))
    counts = {}
    for i in hist:
      for av in cat.by_id[i].attributes().items():
        counts[av] = counts.get(av, 0) + 1
    assert named and all(counts[av] >= 2 for av in named)
