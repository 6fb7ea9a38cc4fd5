"""MovieLens-100k read from the recbole wheel's files (skipped when recbole is not installed:
`pip install --no-deps recbole==1.2.1`), and parse errors that name the file, line and field."""

import pytest

import helpers
from crs_jax import movielens


@pytest.fixture(scope="module")
def ml():
  if movielens.default_dir() is None:
    helpers.missing_install("MovieLens-100k absent: pip install --no-deps recbole==1.2.1")
  return movielens.load()


def test_counts_and_known_rows(ml):
  assert (len(ml.movies), len(ml.ratings), len(ml.users)) == (1682, 100000, 943)
  assert ml.movies["1"] == movielens.Movie("1", "Toy Story", 1995,
                                           ("Animation", "Children's", "Comedy"))
  # the file's own quirks: "unkonwn" year and a year found in the title
  assert ml.movies["267"].year is None
  assert ml.movies["1412"].year == 1995
  assert ml.ratings[0] == movielens.Rating("196", "242", 3.0, 881250949)


def test_holdout_targets_are_latest_liked_ratings(ml):
  split = movielens.holdout(ml.ratings, min_rating=4, fraction=0.2)
  assert len(split.targets) > 900
  for u in list(split.targets)[:50]:
    hist_end = max(r.timestamp for r in split.history[u])
    mine = {r.item: r for r in ml.ratings if r.user == u}
    assert all(mine[i].rating >= 4 and mine[i].timestamp >= hist_end for i in split.targets[u])
    assert not split.targets[u] & {r.item for r in split.history[u]}


def test_malformed_files_name_file_line_and_field(tmp_path):
  (tmp_path / "ml-100k.item").write_text(
      "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
      "1\tToy Story\t1995\tComedy\n")
  (tmp_path / "ml-100k.inter").write_text(
      "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
      "1\t1\t5\t100\n2\t1\tfive\t101\n")
  with pytest.raises(movielens.MovieLensError, match=r"ml-100k\.inter:3: field 'rating'"):
    movielens.load(str(tmp_path))
  (tmp_path / "ml-100k.inter").write_text(
      "user_id:token\titem_id:token\trating:float\ttimestamp:float\n1\t7\t5\t100\n")
  with pytest.raises(movielens.MovieLensError, match=r"ml-100k\.inter:2: field 'item_id'"):
    movielens.load(str(tmp_path))


def test_holdout_profile_and_rankings_on_hand_made_ratings():
  movies = {str(i): movielens.Movie(str(i), f"M{i}", 1990 + i, g)
            for i, g in enumerate([("Drama",), ("Comedy",), ("Drama", "War"), ("Comedy",),
                                   ("Drama",)], 1)}
  R = movielens.Rating
  ratings = [R("a", "1", 5, 1), R("a", "2", 2, 2), R("a", "3", 5, 3), R("a", "5", 5, 4),
             R("b", "2", 5, 1), R("b", "4", 4, 2), R("b", "1", 3, 3), R("b", "5", 4, 4)]
  split = movielens.holdout(ratings, fraction=0.5, min_history=1)
  # 3 liked each -> round(0.5 * 3) = 2 held out: the latest two
  assert split.targets == {"a": {"3", "5"}, "b": {"4", "5"}}
  assert [r.item for r in split.history["a"]] == ["1", "2"]
  assert movielens.profile_text(split.history["b"], movies) == (
      "Likes Comedy movies, mostly from the 1990s.")
  assert [r.item for r in split.history["b"]] == ["2"]
  # history counts: 2 x2, 1 x1 -> popularity order 2, 1; seen movies are skipped
  pop = movielens.rank_for_users(split, movies, "popularity", k=3)
  assert pop == {"a": [], "b": ["1"]}
  with pytest.raises(ValueError, match="unknown method"):
    movielens.rank_for_users(split, movies, "magic")
