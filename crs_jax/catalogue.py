"""The seeded synthetic catalogue: items with closed-vocabulary attributes, Zipf popularity,
generated titles and descriptions; JSONL I/O whose errors name the file, line and field.

Every attribute value comes from `ATTRIBUTES` and no title word is an attribute value, so what a
text says about an item's attributes can be read back exactly (`crs_jax.nlu`): that is what makes
explanation faithfulness and simulator goal adherence exact metrics.

    cat = make_catalogue(500, seed=0)      # Catalogue: .items (tuple of Item), .by_id
    cat = cat.extended(make_items(100, seed=1, start=500))   # a changing catalogue
    write_catalogue(cat, "items.jsonl"); read_catalogue("items.jsonl")

Popularity follows a Zipf law: the item of popularity rank r (1-based, a seeded permutation of
the catalogue) has weight r^-s / H(N, s) (s = `zipf_s`, 1.0 by default), so the most popular
1% of a 500-item catalogue holds about 29% of the mass.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Iterable, Sequence

import numpy as np

from mode_jax import atomic_io

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "genre": ("comedy", "drama", "horror", "thriller", "romance", "sci-fi", "fantasy",
              "documentary", "animation", "western", "musical", "crime"),
    "era": ("1960s", "1970s", "1980s", "1990s", "2000s", "2010s", "2020s"),
    "length": ("short", "medium-length", "long"),
    "mood": ("cheerful", "dark", "tense", "light-hearted", "romantic", "thoughtful"),
    "language": ("English", "French", "Spanish", "Japanese", "Korean", "Hindi"),
}
ATTRIBUTE_NAMES = tuple(ATTRIBUTES)
MINUTES = {"short": (75, 95), "medium-length": (96, 125), "long": (126, 190)}

_ADJ = ("Silent", "Golden", "Broken", "Hidden", "Last", "Crimson", "Distant", "Endless", "Frozen",
        "Wild", "Secret", "Burning", "Quiet", "Lost", "Midnight", "Iron", "Paper", "Glass",
        "Velvet", "Electric", "Hollow", "Northern", "Scarlet", "Sleeping", "Winding")
_NOUN = ("River", "Garden", "Empire", "Letter", "Horizon", "Station", "Mirror", "Harbor",
         "Orchard", "Summer", "Kingdom", "Promise", "Signal", "Island", "Machine", "Lantern",
         "Bridge", "Canyon", "Violin", "Compass", "Tower", "Meadow", "Comet", "Alley", "Voyage")
_PATTERNS = ("The {a} {n}", "{a} {n}", "The {n} of {n2}", "{n} and {n2}", "A {a} {n}")
_ROLES = ("a retired detective", "two estranged sisters", "a young chef", "a village teacher",
          "an exiled prince", "a struggling musician", "a lighthouse keeper", "a rookie pilot",
          "a small-town mayor", "an aging boxer", "a runaway robot", "a pair of rival thieves")
_PLOTS = ("who finds a map to a forgotten city", "who must win back a lost friend",
          "who is hiding a dangerous secret", "who sets out across the country",
          "who inherits a crumbling hotel", "who is hunted after witnessing a robbery",
          "who tries to save a family business", "who falls for an unlikely stranger",
          "who returns home after twenty years", "who enters a strange competition")


class CatalogueError(ValueError):
  """A malformed catalogue file or item: the message names the file, line and field."""


@dataclasses.dataclass(frozen=True)
class Item:
  id: str
  title: str
  genre: str
  era: str
  length: str
  mood: str
  language: str
  popularity: float     # Zipf weight; sums to 1 over the catalogue it was made with
  minutes: int = 100
  description: str = ""

  def value(self, attr: str) -> str:
    """The value of attribute `attr`."""
    return getattr(self, attr)

  def attributes(self) -> dict[str, str]:
    """{attribute: value} of the catalogue attributes."""
    return {a: getattr(self, a) for a in ATTRIBUTE_NAMES}

  def to_json(self) -> dict:
    """The item as a JSON-able dict."""
    return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Catalogue:
  items: tuple[Item, ...]

  def __post_init__(self):
    seen = set()
    for it in self.items:
      if it.id in seen:
        raise CatalogueError(f"duplicate item id {it.id!r}")
      seen.add(it.id)

  @property
  def by_id(self) -> dict[str, Item]:
    """{item id: item}."""
    return {it.id: it for it in self.items}

  def __len__(self) -> int:
    return len(self.items)

  def extended(self, new: Iterable[Item]) -> "Catalogue":
    """The catalogue with `new` items added (ids must be new); nothing else changes."""
    return Catalogue(self.items + tuple(new))

  def titles(self) -> dict[str, str]:
    """{item id: title}."""
    return {it.id: it.title for it in self.items}


def zipf_weights(n: int, s: float = 1.0) -> np.ndarray:
  """w[r-1] = r^-s / sum_j j^-s for popularity ranks r = 1..n."""
  w = np.arange(1, n + 1, dtype=np.float64) ** -s
  return w / w.sum()


def _title(k: int) -> str:
  """The k-th distinct title (k >= 0): patterns x words, then numbered sequels."""
  per_round = len(_PATTERNS) * len(_ADJ) * len(_NOUN)
  base, sequel = k % per_round, k // per_round
  p, rest = base % len(_PATTERNS), base // len(_PATTERNS)
  a, n = rest % len(_ADJ), rest // len(_ADJ)
  n2 = (n + 1 + a) % len(_NOUN)
  title = _PATTERNS[p].format(a=_ADJ[a], n=_NOUN[n], n2=_NOUN[n2])
  return title if sequel == 0 else f"{title} {sequel + 1}"


def describe(it: Item, plot: str) -> str:
  """The item's description text (its attributes and `plot`)."""
  return (f"A {it.mood} {it.genre} from the {it.era} about {plot}. "
          f"{it.length.capitalize()} at {it.minutes} minutes, in {it.language}.")


def make_items(n: int, seed: int, *, start: int = 0, zipf_s: float = 1.0) -> list[Item]:
  """`n` items with ids `item{start}`..; attributes uniform, popularity Zipf over these n."""
  rng = np.random.default_rng([seed, start])
  pop = zipf_weights(n, zipf_s)[rng.permutation(n)]
  title_ids = rng.permutation(max(n * 3, 64))[:n] + start * 3
  items = []
  for i in range(n):
    vals = {a: vs[rng.integers(len(vs))] for a, vs in ATTRIBUTES.items()}
    lo, hi = MINUTES[vals["length"]]
    plot = f"{_ROLES[rng.integers(len(_ROLES))]} {_PLOTS[rng.integers(len(_PLOTS))]}"
    it = Item(id=f"item{start + i}", title=_title(int(title_ids[i])), popularity=float(pop[i]),
              minutes=int(rng.integers(lo, hi + 1)), **vals)
    items.append(dataclasses.replace(it, description=describe(it, plot)))
  return items


def make_catalogue(n: int, seed: int = 0, zipf_s: float = 1.0) -> Catalogue:
  """A synthetic catalogue of `n` items with Zipf popularity."""
  return Catalogue(tuple(make_items(n, seed, zipf_s=zipf_s)))


# --------------------------------------------------------------------------- I/O
_FIELDS = {f.name: f.type for f in dataclasses.fields(Item)}
_REQUIRED = ("id", "title", *ATTRIBUTE_NAMES, "popularity")


def item_from_json(rec: dict, where: str) -> Item:
  """An Item from a JSON object; errors name `where` (file:line) and the field."""
  for f in _REQUIRED:
    if f not in rec:
      raise CatalogueError(f"{where}: missing field {f!r}")
  unknown = sorted(set(rec) - set(_FIELDS))
  if unknown:
    raise CatalogueError(f"{where}: unknown field {unknown[0]!r}")
  for f in ("id", "title", "description"):
    if f in rec and not isinstance(rec[f], str):
      raise CatalogueError(f"{where}: field {f!r} must be a string, got {rec[f]!r}")
  for a, values in ATTRIBUTES.items():
    if rec[a] not in values:
      raise CatalogueError(f"{where}: field {a!r} is {rec[a]!r}, not one of {list(values)}")
  pop = rec["popularity"]
  if isinstance(pop, bool) or not isinstance(pop, (int, float)) or not pop >= 0:
    raise CatalogueError(f"{where}: field 'popularity' must be a number >= 0, got {pop!r}")
  if "minutes" in rec and (isinstance(rec["minutes"], bool) or not isinstance(rec["minutes"], int)):
    raise CatalogueError(f"{where}: field 'minutes' must be an integer, got {rec['minutes']!r}")
  return Item(**rec)


def read_catalogue(path: str) -> Catalogue:
  """A catalogue from JSONL; a bad line is a CatalogueError naming file and line."""
  if not os.path.isfile(path):
    raise CatalogueError(f"{path}: missing")
  items, lines = [], {}
  for n, rec in atomic_io.jsonl_records(path, error_cls=CatalogueError):
    it = item_from_json(rec, f"{path}:{n}")
    if it.id in lines:
      raise CatalogueError(f"{path}:{n}: field 'id': duplicate {it.id!r} (first on line "
                           f"{lines[it.id]})")
    lines[it.id] = n
    items.append(it)
  if not items:
    raise CatalogueError(f"{path}: no items")
  return Catalogue(tuple(items))


def write_catalogue(cat: Catalogue, path: str) -> None:
  """Writes the catalogue as JSONL, atomically."""
  atomic_io.write_jsonl_atomic(path, (it.to_json() for it in cat.items))


def items_with(cat: Catalogue, constraints: dict[str, str]) -> list[Item]:
  """Items whose attributes have all the `constraints` values."""
  return [it for it in cat.items if all(it.value(a) == v for a, v in constraints.items())]


def popularity_order(items: Sequence[Item]) -> list[Item]:
  """Items by popularity (most popular first; ties by id)."""
  return sorted(items, key=lambda it: (-it.popularity, it.id))
