"""Exact reading of attribute mentions in text (closed vocabulary, so it is a checker, not a
model): which attribute values a turn names, and whether each is negated.

A value is negated when one of `NEGATORS` (or "anything but") occurs among the few words before
it in the same clause ("not horror", "anything but French", "no dark films", "I don't want long
ones"); "but" alone is a conjunction ("Close, but ideally Spanish" wants Spanish).
Titles are masked first (`mask_titles`), so an explanation that names the item is not read as
claiming the title's words.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from typing import Iterable, Optional

from crs_jax import catalogue as catalogue_lib

NEGATORS = ("not", "no", "n't", "without", "hate", "avoid", "except", "never", "nothing")
_WINDOW = 4     # words before a value that can negate it
Schema = catalogue_lib.Schema


@functools.lru_cache(maxsize=32)
def _value_patterns(schema: Schema) -> dict:
  return {(a, v): re.compile(r"(?<![\w-])" + re.escape(v.lower()) + r"(?![\w-])")
          for a, vs in schema.attributes for v in vs}
_CLAUSE = re.compile(r"[.;!?,\u2014]|\band\b")


@dataclasses.dataclass(frozen=True)
class Mention:
  attr: str
  value: str
  negated: bool


@functools.lru_cache(maxsize=16)
def _titles_pattern(titles: tuple) -> Optional[re.Pattern]:
  """One pattern for all `titles` (sorted, longest first: the longest title at a position
  wins), compiled once: a catalogue's 1,682 separate patterns overflow `re`'s cache and were
  recompiled on every call."""
  if not titles:
    return None
  alts = "|".join(re.escape(t) for t in sorted(titles, key=lambda t: (-len(t), t)))
  return re.compile(r"(?<!\w)(?:" + alts + r")(?!\w)", re.IGNORECASE)


def mask_titles(text: str, titles: Iterable[str]) -> str:
  """`text` with item titles blanked where they stand as whole words (so title words are not
  read as attribute mentions; a one-letter title such as MovieLens's "M" blanks no letters)."""
  pattern = _titles_pattern(tuple(sorted({t for t in titles if t})))
  return pattern.sub(" ", text) if pattern is not None else text


def mentions(text: str, schema: Optional[Schema] = None) -> list[Mention]:
  """Attribute values of `schema` (default: the synthetic catalogue's) named in `text`, in
  order of appearance."""
  low = text.lower().replace("n\u2019t", "n't")
  found = []
  for (a, v), pat in _value_patterns(schema or catalogue_lib.SYNTHETIC).items():
    for m in pat.finditer(low):
      found.append((m.start(), a, v))
  out = []
  for start, a, v in sorted(found):
    before = low[:start]
    clause = _CLAUSE.split(before)[-1]
    words = re.findall(r"[a-z']+", clause)[-_WINDOW:]
    neg = any(w in NEGATORS or w.endswith("n't") for w in words) or any(
        w == "but" and j > 0 and words[j - 1] in ("anything", "everything", "all")
        for j, w in enumerate(words))
    out.append(Mention(a, v, neg))
  return out


def positive_values(text: str, schema: Optional[Schema] = None) -> set:
  """{(attribute, value)} the text asks for."""
  return {(m.attr, m.value) for m in mentions(text, schema) if not m.negated}


def negative_values(text: str, schema: Optional[Schema] = None) -> set:
  """{(attribute, value)} the text rejects."""
  return {(m.attr, m.value) for m in mentions(text, schema) if m.negated}


def asked_attribute(text: str, schema: Optional[Schema] = None):
  """The attribute a system question asks about ("What genre would you like?"), or None."""
  low = text.lower()
  hits = [(m.start(), a) for a, words in (schema or catalogue_lib.SYNTHETIC).words
          for w in words for m in re.finditer(r"\b" + re.escape(w) + r"\b", low)]
  return min(hits)[1] if hits else None


_EXPLAIN = re.compile(r"\b(why|tell me more|what makes|explain)\b")
_ACCEPT = re.compile(r"\b(yes|great|perfect|sounds good|i'll (take|watch)|that's it|love it|"
                     r"what i wanted)\b")
_REJECT = re.compile(r"\b(no|not|nope|something else|anything else|don't|doesn't)\b")
_NO_PREF = re.compile(r"\b(don't mind|no preference|is fine|any \w+ is)\b")


def user_intent(text: str, after_recommendation: bool, schema: Optional[Schema] = None) -> str:
  """The intent of a free-text user turn (for people typing in the chat page), given whether
  the last system turn recommended something: explain / accept / refine (a rejection naming a
  value) / reject only then; otherwise inform (names values, or says it has no preference) or
  chitchat. A keyword reading: exact on the rule simulator's templates, a heuristic for
  people."""
  low = text.lower().replace("\u2019", "'")
  named = mentions(text, schema)
  if after_recommendation:
    if _EXPLAIN.search(low):
      return "explain"
    if _ACCEPT.search(low) and not _REJECT.search(low):
      return "accept"
    if _REJECT.search(low) or named:
      return "refine" if named else "reject"
  if named or _NO_PREF.search(low):
    return "inform"
  return "chitchat"
