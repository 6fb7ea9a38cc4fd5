"""Catalogues: items with free attribute names and values (a `Schema` per catalogue; an
attribute may hold several values, as a movie's genres do), a title, a popularity weight and
free text; the seeded synthetic catalogue; JSONL I/O whose errors name the file, line and field.

A catalogue's attribute values form a closed set (its schema, given or read off its items), so
what a text says about an item's attributes can be read back exactly (`crs_jax.nlu`): that is
what makes explanation faithfulness and simulator goal adherence exact metrics. In the
synthetic catalogue every value comes from `ATTRIBUTES` and no title word is one; a real
catalogue (MovieLens, `crs_jax.movielens.catalogue`) has titles that name values ("Comedy"),
which readers mask (`nlu.mask_titles`).

    {"id": "1", "title": "Toy Story", "attributes": {"genre": ["Animation", "Comedy"],
     "decade": "1990s"}, "popularity": 0.0021, "description": "..."}     # one JSONL line

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
from typing import Iterable, Optional, Sequence

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
class Schema:
  """A catalogue's attributes: their names in order, each one's closed set of values (the
  values its items use), which attributes an item may hold several values of (`multi`, e.g. a
  movie's genres), the words a question about each uses ("decade" for era) and an optional
  `template` for an item's attribute phrase (`describe`).

  Built from a dict (`Schema.of`) or read off a catalogue's items (`Schema.infer`); hashable,
  so readers of text (`crs_jax.nlu`) are cached per schema."""
  attributes: tuple          # ((name, (value, ...)), ...)
  multi: frozenset = frozenset()
  words: tuple = ()          # ((name, (word, ...)), ...); default: the name
  template: str = ""         # str.format over attribute names (multi values joined by "and")

  @classmethod
  def of(cls, attributes: dict, *, multi=(), words: Optional[dict] = None,
         template: str = "") -> "Schema":
    """A schema from {name: values}; `words` {name: question words}."""
    words = words or {}
    return cls(tuple((a, tuple(vs)) for a, vs in attributes.items()), frozenset(multi),
               tuple((a, tuple(words.get(a, (a.replace("_", " "),)))) for a in attributes),
               template)

  @classmethod
  def infer(cls, items: Sequence["Item"]) -> "Schema":
    """The schema of these items: attributes in order of first appearance, values sorted,
    multi-valued where any item holds other than one value; the synthetic schema when the
    items fit it."""
    if all(it.fits(SYNTHETIC) for it in items):
      return SYNTHETIC
    values: dict = {}
    multi = set()
    for it in items:
      for a, vs in it.attrs:
        values.setdefault(a, set()).update(vs)
        if len(vs) != 1:
          multi.add(a)
    return cls.of({a: sorted(vs) for a, vs in values.items()}, multi=multi)

  @property
  def names(self) -> tuple:
    """Attribute names in order."""
    return tuple(a for a, _ in self.attributes)

  def values(self, attr: str) -> tuple:
    """The values of attribute `attr`."""
    for a, vs in self.attributes:
      if a == attr:
        return vs
    raise KeyError(f"unknown attribute {attr!r} (schema has {list(self.names)})")

  def question_words(self, attr: str) -> tuple:
    """Words a question about `attr` names it by."""
    return dict(self.words).get(attr, (attr,))

  def describe(self, it: "Item") -> str:
    """The item's attributes as a phrase ("a dark comedy from the 1990s, short, in French";
    generic schemas: "a film with genre Comedy and Drama, decade 1990s")."""
    if self.template:
      return self.template.format(**{a: it.value(a) for a in self.names})
    parts = [f"{self.question_words(a)[0]} {it.value(a)}" for a in self.names if it.values(a)]
    return "a film with " + ", ".join(parts)


def _values(v) -> tuple:
  return (v,) if isinstance(v, str) else tuple(v)


@dataclasses.dataclass(frozen=True)
class Item:
  """A catalogue item: free attribute values (`attrs`: ((name, (value, ...)), ...)), title,
  popularity weight, free-text description. `Item.of` builds one from a dict."""
  id: str
  title: str
  attrs: tuple
  popularity: float     # Zipf weight; sums to 1 over the catalogue it was made with
  minutes: Optional[int] = None
  description: str = ""

  @classmethod
  def of(cls, id: str, title: str, attributes: dict, popularity: float, **kw) -> "Item":
    """An item from {attribute: value or values}."""
    return cls(id=id, title=title, attrs=tuple((a, _values(v)) for a, v in attributes.items()),
               popularity=popularity, **kw)

  def values(self, attr: str) -> tuple:
    """The item's values of attribute `attr` (empty when it has none)."""
    for a, vs in self.attrs:
      if a == attr:
        return vs
    return ()

  def value(self, attr: str) -> str:
    """The item's value of `attr` (several joined by " and ")."""
    return " and ".join(self.values(attr))

  def has(self, attr: str, value: str) -> bool:
    """Whether the item has `value` for `attr`."""
    return value in self.values(attr)

  def attributes(self) -> dict:
    """{attribute: value} (several values joined by " and ")."""
    return {a: " and ".join(vs) for a, vs in self.attrs}

  def fits(self, schema: "Schema") -> bool:
    """Whether every value is one of `schema`'s and single-valued attributes hold one."""
    names = dict(schema.attributes)
    return all(a in names and set(vs) <= set(names[a]) and (len(vs) == 1 or a in schema.multi)
               for a, vs in self.attrs)

  def to_json(self) -> dict:
    """The item as a JSON-able dict (one value: a string; several: a list)."""
    out = {"id": self.id, "title": self.title,
           "attributes": {a: vs[0] if len(vs) == 1 else list(vs) for a, vs in self.attrs},
           "popularity": self.popularity}
    if self.minutes is not None:
      out["minutes"] = self.minutes
    if self.description:
      out["description"] = self.description
    return out


SYNTHETIC = Schema.of(ATTRIBUTES, words={"era": ("decade", "era")},
                      template="a {mood} {genre} from the {era}, {length}, in {language}")


@dataclasses.dataclass(frozen=True)
class Catalogue:
  items: tuple[Item, ...]
  schema: Optional[Schema] = None      # None: inferred from the items

  def __post_init__(self):
    seen = set()
    for it in self.items:
      if it.id in seen:
        raise CatalogueError(f"duplicate item id {it.id!r}")
      seen.add(it.id)
    if self.schema is None:
      object.__setattr__(self, "schema", Schema.infer(self.items))
    else:
      for it in self.items:
        if not it.fits(self.schema):
          raise CatalogueError(f"item {it.id!r}: attributes {dict(it.attrs)} do not fit the "
                               f"catalogue schema {dict(self.schema.attributes)}")

  @property
  def by_id(self) -> dict[str, Item]:
    """{item id: item}."""
    return {it.id: it for it in self.items}

  def __len__(self) -> int:
    return len(self.items)

  def extended(self, new: Iterable[Item]) -> "Catalogue":
    """The catalogue with `new` items added (ids must be new; the schema is kept when they fit
    it, else inferred again)."""
    new = tuple(new)
    keep = all(it.fits(self.schema) for it in new)
    return Catalogue(self.items + new, self.schema if keep else None)

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
  """The synthetic item's description text (its attributes and `plot`)."""
  v = it.attributes()
  return (f"A {v['mood']} {v['genre']} from the {v['era']} about {plot}. "
          f"{v['length'].capitalize()} at {it.minutes} minutes, in {v['language']}.")


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
    it = Item.of(f"item{start + i}", _title(int(title_ids[i])), vals, float(pop[i]),
                 minutes=int(rng.integers(lo, hi + 1)))
    items.append(dataclasses.replace(it, description=describe(it, plot)))
  return items


def make_catalogue(n: int, seed: int = 0, zipf_s: float = 1.0) -> Catalogue:
  """A synthetic catalogue of `n` items with Zipf popularity."""
  return Catalogue(tuple(make_items(n, seed, zipf_s=zipf_s)), SYNTHETIC)


# --------------------------------------------------------------------------- I/O
_FIELDS = ("id", "title", "attributes", "popularity", "minutes", "description")


def _legacy(rec: dict, where: str) -> dict:
  """A flat synthetic record (the five attributes as top-level fields, as files written
  before free attributes were) in the `attributes` form; values checked against `ATTRIBUTES`."""
  for a, values in ATTRIBUTES.items():
    if a not in rec:
      raise CatalogueError(f"{where}: missing field {a!r}")
    if rec[a] not in values:
      raise CatalogueError(f"{where}: field {a!r} is {rec[a]!r}, not one of {list(values)}")
  rec = dict(rec)
  rec["attributes"] = {a: rec.pop(a) for a in ATTRIBUTE_NAMES}
  return rec


def item_from_json(rec: dict, where: str) -> Item:
  """An Item from a JSON object; errors name `where` (file:line) and the field.

  `attributes` maps free attribute names to a value or a list of values (non-empty strings);
  the flat synthetic form (genre, era, ... as fields) is read too."""
  if "attributes" not in rec and any(a in rec for a in ATTRIBUTE_NAMES):
    rec = _legacy(rec, where)
  for f in ("id", "title", "attributes", "popularity"):
    if f not in rec:
      raise CatalogueError(f"{where}: missing field {f!r}")
  unknown = sorted(set(rec) - set(_FIELDS))
  if unknown:
    raise CatalogueError(f"{where}: unknown field {unknown[0]!r}")
  for f in ("id", "title", "description"):
    if f in rec and not isinstance(rec[f], str):
      raise CatalogueError(f"{where}: field {f!r} must be a string, got {rec[f]!r}")
  attrs = rec["attributes"]
  if not isinstance(attrs, dict):
    raise CatalogueError(f"{where}: field 'attributes' must be an object, got {attrs!r}")
  for a, v in attrs.items():
    vs = [v] if isinstance(v, str) else v
    if not a or not isinstance(vs, list) or not all(isinstance(x, str) and x.strip() for x in vs):
      raise CatalogueError(f"{where}: field 'attributes.{a}' must be a non-empty string or a "
                           f"list of them, got {v!r}")
  pop = rec["popularity"]
  if isinstance(pop, bool) or not isinstance(pop, (int, float)) or not pop >= 0:
    raise CatalogueError(f"{where}: field 'popularity' must be a number >= 0, got {pop!r}")
  if "minutes" in rec and (isinstance(rec["minutes"], bool) or not isinstance(rec["minutes"], int)):
    raise CatalogueError(f"{where}: field 'minutes' must be an integer, got {rec['minutes']!r}")
  return Item.of(rec["id"], rec["title"], attrs, float(pop), minutes=rec.get("minutes"),
                 description=rec.get("description", ""))


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
  return [it for it in cat.items if all(it.has(a, v) for a, v in constraints.items())]


def popularity_order(items: Sequence[Item]) -> list[Item]:
  """Items by popularity (most popular first; ties by id)."""
  return sorted(items, key=lambda it: (-it.popularity, it.id))
