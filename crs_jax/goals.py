"""Users whose preferences are known exactly: a hidden goal (hard constraints, liked and
disliked attribute values with weights), its utility over the catalogue, the exact best and
acceptable items, and a natural-language profile built from a sampled viewing history.

    u(item) = -inf                                   if item lacks a hard constraint's value
            = sum_a sum_{v in item.a} (w_like[a][v] - w_dislike[a][v])      otherwise

(an attribute may hold several values, as a movie's genres do: each counts)

The user accepts an item iff u(item) >= u_(k), the k-th largest utility over the catalogue
(`accept_k`; ties included), so "acceptable" is exact and success@T, recall@k and NDCG@k are
computed against it. The target (never named by the user) is the best item, ties broken by
popularity then id.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import numpy as np

from crs_jax import catalogue as catalogue_lib

Item = catalogue_lib.Item


@dataclasses.dataclass(frozen=True)
class Goal:
  constraints: dict          # attr -> value (hard)
  likes: dict                # attr -> {value: weight}
  dislikes: dict             # attr -> {value: weight}
  accept_k: int = 3

  def utility(self, it: Item) -> float:
    """The user's utility of an item: -inf when it breaks a hard constraint, else the summed
    weights of its liked minus disliked values."""
    if any(not it.has(a, v) for a, v in self.constraints.items()):
      return -math.inf
    u = sum(w.get(v, 0.0) for a, w in self.likes.items() for v in it.values(a))
    return u - sum(w.get(v, 0.0) for a, w in self.dislikes.items() for v in it.values(a))

  def held_values(self) -> set:
    """(attr, value) the user wants: constraints and likes."""
    out = {(a, v) for a, v in self.constraints.items()}
    return out | {(a, v) for a, w in self.likes.items() for v in w}

  def disliked_values(self) -> set:
    """{(attribute, value)} the user dislikes."""
    return {(a, v) for a, w in self.dislikes.items() for v in w}

  def to_json(self) -> dict:
    """The goal as a JSON-able dict; `from_json` reads it back."""
    return dataclasses.asdict(self)

  @classmethod
  def from_json(cls, d: dict) -> "Goal":
    """The goal of a `to_json` dict."""
    return cls(constraints=dict(d["constraints"]), likes={a: dict(w) for a, w in d["likes"].items()},
               dislikes={a: dict(w) for a, w in d["dislikes"].items()},
               accept_k=int(d.get("accept_k", 3)))


@dataclasses.dataclass(frozen=True)
class Judgement:
  """The exact view of a goal over one catalogue."""
  utilities: dict            # item id -> utility
  ranked: tuple              # feasible item ids, best first (utility, popularity, id)
  acceptable: frozenset      # ids with utility >= the accept_k-th best (ties included)
  target: str                # ranked[0]

  def accepts(self, item_id: str) -> bool:
    """Whether the user would accept `item_id`."""
    return item_id in self.acceptable


def judge(goal: Goal, cat: catalogue_lib.Catalogue) -> Judgement:
  """The exact judgement of a goal over the catalogue: items ranked by utility, the target and
  the acceptable set."""
  util = {it.id: goal.utility(it) for it in cat.items}
  feasible = [it for it in cat.items if util[it.id] > -math.inf]
  if not feasible:
    raise ValueError(f"goal {goal.constraints} has no feasible item in the catalogue")
  ranked = tuple(it.id for it in sorted(feasible, key=lambda it: (-util[it.id], -it.popularity,
                                                                    it.id)))
  k = min(goal.accept_k, len(ranked))
  threshold = util[ranked[k - 1]]
  acceptable = frozenset(i for i in ranked if util[i] >= threshold)
  return Judgement(utilities=util, ranked=ranked, acceptable=acceptable, target=ranked[0])


def sample_goal(cat: catalogue_lib.Catalogue, rng: np.random.Generator, *,
                num_constraints: int = 2, num_likes: int = 2, num_dislikes: int = 1,
                accept_k: int = 3) -> Goal:
  """Constraints and likes are the attribute values of an anchor item drawn by popularity
  (so the goal is feasible and users lean popular, as real ones do); dislikes are values the
  anchor does not have, on attributes without a constraint."""
  items = cat.items
  pop = np.array([it.popularity for it in items], dtype=np.float64)
  anchor = items[rng.choice(len(items), p=pop / pop.sum())]
  attrs = [a for a in cat.schema.names if anchor.values(a)]
  order = [attrs[i] for i in rng.permutation(len(attrs))]

  def one(a):                       # one of the anchor's values of a
    vs = anchor.values(a)
    return vs[rng.integers(len(vs))] if len(vs) > 1 else vs[0]

  cons = {a: one(a) for a in order[:num_constraints]}
  like_attrs = order[num_constraints:num_constraints + num_likes]
  likes = {a: {one(a): float(w)} for a, w in zip(like_attrs, (1.0, 0.5, 0.25))}
  dislikes = {}
  for a in [a for a in order if a not in cons][:num_dislikes]:
    others = [v for v in cat.schema.values(a) if not anchor.has(a, v)]
    if others:
      dislikes[a] = {others[rng.integers(len(others))]: 1.0}
  return Goal(constraints=cons, likes=likes, dislikes=dislikes, accept_k=accept_k)


def history(goal: Goal, cat: catalogue_lib.Catalogue, rng: np.random.Generator,
            n: int = 8, temperature: float = 0.5) -> list[str]:
  """Ids of `n` items the user watched: the whole catalogue weighted by
  popularity * exp(u / temperature), where u ignores hard constraints (a history spans moods)."""
  soft = Goal(constraints={}, likes=goal.likes, dislikes=goal.dislikes)
  logits = np.array([soft.utility(it) / temperature + math.log(max(it.popularity, 1e-12))
                     for it in cat.items])
  p = np.exp(logits - logits.max())
  idx = rng.choice(len(cat.items), size=min(n, len(cat.items)), replace=False, p=p / p.sum())
  return [cat.items[i].id for i in idx]


def profile_text(history_ids: Sequence[str], cat: catalogue_lib.Catalogue, top: int = 2) -> str:
  """The natural-language profile the dialogue manager reads: the most frequent attribute
  values of the watched items (what RecLLM's profile writer is trained to produce)."""
  by_id = cat.by_id
  parts = []
  for a in cat.schema.names:
    counts: dict = {}
    for i in history_ids:
      for v in by_id[i].values(a):
        counts[v] = counts.get(v, 0) + 1
    best = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    if best and best[0][1] >= 2:
      parts.append(" and ".join(v for v, c in best if c >= 2))
  if not parts:
    return "No clear taste yet."
  return "Often watches " + ", ".join(parts) + " films."
