"""Baseline recommenders through the `Recommender` interface: random, popularity, a rule-based
recommender that asks about attributes and searches, and an oracle that reads the hidden goal.

All of them answer an `explain` turn the same way: a template explanation built from the
item's own metadata (`explain`), so it is faithful by construction; the LLM ranker/explainer
is measured against that. Only the oracle reads `Session.goal` / `Session.judgement`.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from crs_jax import catalogue as catalogue_lib
from crs_jax import interfaces
from crs_jax import nlu
from crs_jax import search as search_lib

Session = interfaces.Session
SystemTurn = interfaces.SystemTurn

ASK = {"genre": "What genre would you like?", "era": "Which decade do you prefer?",
       "length": "What length of film do you want?", "mood": "What mood are you after?",
       "language": "Which language would you like?"}


def ask(attr: str, schema: catalogue_lib.Schema = catalogue_lib.SYNTHETIC) -> str:
  """The system's question about `attr` ("Which decade do you prefer?")."""
  return ASK.get(attr) if schema == catalogue_lib.SYNTHETIC else \
      f"Which {schema.question_words(attr)[0]} would you like?"


def stated_preferences(s: Session, schema=None) -> tuple[dict, dict]:
  """(attr -> latest wanted value, {(attr, value): None} unwanted), both in the order the user
  said them (a value said again moves to the end): the query is then a copy of the dialogue's
  mentions in order, which a small model learns more easily than a canonical order."""
  want, avoid = {}, {}
  for t in s.user_turns():
    for m in nlu.mentions(t.text, schema):
      if m.negated:
        avoid.pop((m.attr, m.value), None)
        avoid[(m.attr, m.value)] = None
        if want.get(m.attr) == m.value:
          del want[m.attr]
      else:
        want.pop(m.attr, None)
        want[m.attr] = m.value
        avoid.pop((m.attr, m.value), None)
  return want, avoid


def asked_values(it: catalogue_lib.Item, want: dict) -> list:
  """The values the user asked for (`want`, attr -> value) that item `it` has, in order."""
  return [v for a, v in want.items() if it.has(a, v)]


def explain(it: catalogue_lib.Item, want: dict,
            schema: catalogue_lib.Schema = catalogue_lib.SYNTHETIC) -> str:
  """A metadata-grounded explanation: the item's values the user asked for, then the rest."""
  hits = asked_values(it, want)
  lead = f"It matches what you asked for ({', '.join(hits)}). " if hits else ""
  if schema == catalogue_lib.SYNTHETIC:
    v = it.attributes()
    return (f"{lead}{it.title} is a {v['mood']} {v['genre']} from the {v['era']}, "
            f"{v['length']} at {it.minutes} minutes, in {v['language']}.")
  return f"{lead}{it.title} is {schema.describe(it)}."


def recommend_text(it: catalogue_lib.Item,
                   schema: catalogue_lib.Schema = catalogue_lib.SYNTHETIC) -> str:
  """The template recommendation of an item."""
  if schema == catalogue_lib.SYNTHETIC:
    return f"How about {it.title}? It is a {it.value('genre')} from the {it.value('era')}."
  return f"How about {it.title}? It is {schema.describe(it)}."


class _Base:
  """`skip_history`: never recommend an item of the user's history (what MovieLens users
  rated before their targets). `slate`: items shown per recommendation turn (the first
  `slate` of the turn's ranking; one by default)."""

  def __init__(self, catalogue: catalogue_lib.Catalogue, *, skip_history: bool = False,
               slate: int = 1):
    if slate < 1:
      raise ValueError(f"slate must be >= 1, got {slate}")
    self.catalogue, self.by_id, self.schema = catalogue, catalogue.by_id, catalogue.schema
    self.skip_history, self.slate = skip_history, slate

  def unavailable(self, s: Session) -> set:
    """Items not to recommend: shown ones (and the history with `skip_history`)."""
    return set(s.shown()) | (set(s.history) if self.skip_history else set())

  def respond(self, sessions: Sequence[Session]) -> list[SystemTurn]:
    return [self._explain_or(s) for s in sessions]

  def _explain_or(self, s: Session) -> SystemTurn:
    users = s.user_turns()
    if users and users[-1].intent == "explain":
      asked = [i for i, r in users[-1].reactions.items() if r == "ask" and i in self.by_id]
      if asked:
        want, _ = stated_preferences(s, self.schema)
        exps = {i: explain(self.by_id[i], want, self.schema) for i in asked}
        return SystemTurn(" ".join(exps.values()), "reply", explanations=exps)
    return self.turn(s)

  def _recommend(self, s: Session, item_id: str, retrieved=()) -> SystemTurn:
    """`item_id` (and, with a slate, the next unshown items of `retrieved`) recommended."""
    shown = self.unavailable(s) | {item_id}
    ids = [item_id] + [i for i in retrieved if i not in shown][:self.slate - 1]
    want, _ = stated_preferences(s, self.schema)
    text = recommend_text(self.by_id[ids[0]], self.schema)
    if len(ids) > 1:
      text = (f"How about {', '.join(self.by_id[i].title for i in ids[:-1])} or "
              f"{self.by_id[ids[-1]].title}? " + " ".join(
                  explain(self.by_id[i], {}, self.schema) for i in ids))
    return SystemTurn(text, "recommend", items=tuple(ids),
                      explanations={i: explain(self.by_id[i], want, self.schema) for i in ids},
                      retrieved=tuple(retrieved))

  def turn(self, s: Session) -> SystemTurn:
    raise NotImplementedError


class RandomRecommender(_Base):
  """One uniformly random item not shown before, every turn."""

  def turn(self, s):
    """Recommends a random item not shown yet."""
    shown = self.unavailable(s)
    left = [it.id for it in self.catalogue.items if it.id not in shown]
    if self.slate == 1:
      return self._recommend(s, left[int(s.rng("random").integers(len(left)))])
    pick = s.rng("random").choice(len(left), size=min(self.slate, len(left)), replace=False)
    ranked = [left[int(j)] for j in pick]
    return self._recommend(s, ranked[0], retrieved=ranked)


class PopularityRecommender(_Base):
  """The most popular item not shown before, every turn."""

  def __init__(self, catalogue, **kw):
    super().__init__(catalogue, **kw)
    self.order = [it.id for it in catalogue_lib.popularity_order(catalogue.items)]

  def turn(self, s):
    """Recommends the most popular item not shown yet."""
    shown = self.unavailable(s)
    ranked = [i for i in self.order if i not in shown][:10]
    return self._recommend(s, ranked[0], retrieved=ranked)


class RuleRecommender(_Base):
  """Asks about attributes (in `ask_order`) until it knows `min_known` wanted values, then
  recommends the search API's first unseen result for the stated preferences; after a rejection
  that names no new preference it asks about the next attribute it has not asked about."""

  def __init__(self, catalogue, *, min_known: int = 3, ask_order=None,
               index: search_lib.SearchIndex = None, **kw):
    super().__init__(catalogue, **kw)
    self.min_known = min_known
    self.ask_order = tuple(ask_order or catalogue.schema.names)
    self.index = index or search_lib.SearchIndex(catalogue.items, catalogue.schema)

  @staticmethod
  def query(want: dict, avoid) -> str:
    """"v1 v2 ..., not u1, not u2" in the given orders (the search API reads them exactly)."""
    return " ".join(want.values()) + "".join(f", not {v}" for _, v in avoid)

  def turn(self, s):
    """Asks for the next unasked attribute, else recommends the most popular item matching what
    the user stated."""
    want, avoid = stated_preferences(s, self.schema)
    asked = {nlu.asked_attribute(t.text, self.schema) for t in s.system_turns()
             if t.kind == "ask"}
    unasked = [a for a in self.ask_order if a not in want and a not in asked]
    last = s.user_turns()[-1] if s.user_turns() else None
    stuck = last is not None and last.intent == "reject"
    if unasked and (len(want) < self.min_known or stuck):
      return SystemTurn(ask(unasked[0], self.schema), "ask")
    q = self.query(want, avoid)
    ranked = self.index.search(q, k=10, exclude=sorted(self.unavailable(s)))
    return dataclasses.replace(self._recommend(s, ranked[0], retrieved=ranked), query=q)


class OracleRecommender(_Base):
  """Knows the goal: recommends the best unseen item under the hidden utility."""

  def turn(self, s):
    """Recommends the judge's best item not shown yet (an upper bound)."""
    shown = self.unavailable(s)
    ranked = [i for i in s.judgement.ranked if i not in shown]
    if not ranked:                 # every target shown: fall back to the most popular
      ranked = [it.id for it in catalogue_lib.popularity_order(self.catalogue.items)
                if it.id not in shown]
    return self._recommend(s, ranked[0], retrieved=ranked[:10])


BASELINES = {"random": RandomRecommender, "popularity": PopularityRecommender,
             "rule": RuleRecommender, "oracle": OracleRecommender}
