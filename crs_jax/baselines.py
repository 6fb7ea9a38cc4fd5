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


def stated_preferences(s: Session) -> tuple[dict, dict]:
  """(attr -> latest wanted value, {(attr, value): None} unwanted), both in the order the user
  said them (a value said again moves to the end): the query is then a copy of the dialogue's
  mentions in order, which a small model learns more easily than a canonical order."""
  want, avoid = {}, {}
  for t in s.user_turns():
    for m in nlu.mentions(t.text):
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


def explain(it: catalogue_lib.Item, want: dict) -> str:
  """A metadata-grounded explanation: the item's values the user asked for, then the rest."""
  hits = [it.value(a) for a in catalogue_lib.ATTRIBUTE_NAMES if want.get(a) == it.value(a)]
  lead = f"It matches what you asked for ({', '.join(hits)}). " if hits else ""
  return (f"{lead}{it.title} is a {it.mood} {it.genre} from the {it.era}, "
          f"{it.length} at {it.minutes} minutes, in {it.language}.")


def recommend_text(it: catalogue_lib.Item) -> str:
  """The template recommendation of an item."""
  return f"How about {it.title}? It is a {it.genre} from the {it.era}."


class _Base:
  def __init__(self, catalogue: catalogue_lib.Catalogue):
    self.catalogue, self.by_id = catalogue, catalogue.by_id

  def respond(self, sessions: Sequence[Session]) -> list[SystemTurn]:
    return [self._explain_or(s) for s in sessions]

  def _explain_or(self, s: Session) -> SystemTurn:
    users = s.user_turns()
    if users and users[-1].intent == "explain":
      asked = [i for i, r in users[-1].reactions.items() if r == "ask" and i in self.by_id]
      if asked:
        want, _ = stated_preferences(s)
        exps = {i: explain(self.by_id[i], want) for i in asked}
        return SystemTurn(" ".join(exps.values()), "reply", explanations=exps)
    return self.turn(s)

  def _recommend(self, s: Session, item_id: str, retrieved=()) -> SystemTurn:
    it = self.by_id[item_id]
    want, _ = stated_preferences(s)
    return SystemTurn(recommend_text(it), "recommend", items=(item_id,),
                      explanations={item_id: explain(it, want)}, retrieved=tuple(retrieved))

  def turn(self, s: Session) -> SystemTurn:
    raise NotImplementedError


class RandomRecommender(_Base):
  """One uniformly random item not shown before, every turn."""

  def turn(self, s):
    """Recommends a random item not shown yet."""
    shown = set(s.shown())
    left = [it.id for it in self.catalogue.items if it.id not in shown]
    return self._recommend(s, left[int(s.rng("random").integers(len(left)))])


class PopularityRecommender(_Base):
  """The most popular item not shown before, every turn."""

  def __init__(self, catalogue):
    super().__init__(catalogue)
    self.order = [it.id for it in catalogue_lib.popularity_order(catalogue.items)]

  def turn(self, s):
    """Recommends the most popular item not shown yet."""
    shown = set(s.shown())
    return self._recommend(s, next(i for i in self.order if i not in shown))


class RuleRecommender(_Base):
  """Asks about attributes (in `ask_order`) until it knows `min_known` wanted values, then
  recommends the search API's first unseen result for the stated preferences; after a rejection
  that names no new preference it asks about the next attribute it has not asked about."""

  def __init__(self, catalogue, *, min_known: int = 3, ask_order=catalogue_lib.ATTRIBUTE_NAMES,
               index: search_lib.SearchIndex = None):
    super().__init__(catalogue)
    self.min_known, self.ask_order = min_known, tuple(ask_order)
    self.index = index or search_lib.SearchIndex(catalogue.items)

  @staticmethod
  def query(want: dict, avoid) -> str:
    """"v1 v2 ..., not u1, not u2" in the given orders (the search API reads them exactly)."""
    return " ".join(want.values()) + "".join(f", not {v}" for _, v in avoid)

  def turn(self, s):
    """Asks for the next unasked attribute, else recommends the most popular item matching what
    the user stated."""
    want, avoid = stated_preferences(s)
    asked = {nlu.asked_attribute(t.text) for t in s.system_turns() if t.kind == "ask"}
    unasked = [a for a in self.ask_order if a not in want and a not in asked]
    last = s.user_turns()[-1] if s.user_turns() else None
    stuck = last is not None and last.intent == "reject"
    if unasked and (len(want) < self.min_known or stuck):
      return SystemTurn(ASK[unasked[0]], "ask")
    q = self.query(want, avoid)
    ranked = self.index.search(q, k=10, exclude=s.shown())
    return dataclasses.replace(self._recommend(s, ranked[0], retrieved=ranked), query=q)


class OracleRecommender(_Base):
  """Knows the goal: recommends the best unseen item under the hidden utility."""

  def turn(self, s):
    """Recommends the judge's best item not shown yet (an upper bound)."""
    shown = set(s.shown())
    return self._recommend(s, next(i for i in s.judgement.ranked if i not in shown),
                           retrieved=s.judgement.ranked[:10])


BASELINES = {"random": RandomRecommender, "popularity": PopularityRecommender,
             "rule": RuleRecommender, "oracle": OracleRecommender}
