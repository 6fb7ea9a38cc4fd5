"""The LLM recommender and the LLM user simulator: RecLLM's components as prompts to one text
model (`TextModel`), each call batched over every live session of the turn.

    class TextModel(Protocol):
      def complete(self, prompts: Sequence[str], task: str) -> list[str]   # one line each

Recommender turn (per session): an explanation request is answered with the explanation the
ranker wrote when it recommended the item (no call); otherwise the dialogue manager (`dm`)
writes the system's next question, which is said as written, or "search"; for search the
candidates come from `retriever`:

- "search" (default): the query writer (`query`) writes a request for the search API
  (`crs_jax.search`, attribute filters + BM25 over the whole, growing catalogue);
- "dense": the dual encoder's index (`crs_jax.dual_encoder.DenseIndex`) on what the user has
  said, no query call;
- "hybrid": both, merged by reciprocal rank fusion (`fuse`).

The ranker (`rank`) then picks one of the first `NUM_CANDIDATES` and writes the recommendation:
with `ranking="generate"` it writes "<k>: How about <title>? <why>" greedily (an unreadable k
reads as 1); with `ranking="score"` every candidate k is scored by the log-likelihood of "<k>:"
after the prompt (`TextModel.score`), the best is recommended and the text is generated after
the forced "<k>:". With `slate` > 1 the turn shows that many items: the pick, then the next
candidates (by score when scoring, else in retrieval order), each with the text the ranker
writes after its forced "<k>:" (one more call). So a turn costs at most three (four when
scoring, one more for a slate) model calls for all sessions together. The simulator makes one
call per turn; its reactions follow its own stated intent (accept -> the recommended item,
refine / reject -> reject it, explain -> ask about it).
"""

from __future__ import annotations

from typing import Optional, Protocol, Sequence

import numpy as np

from crs_jax import baselines
from crs_jax import catalogue as catalogue_lib
from crs_jax import dual_encoder
from crs_jax import interfaces
from crs_jax import search as search_lib
from crs_jax import text as text_lib

Session = interfaces.Session
SystemTurn = interfaces.SystemTurn
UserTurn = interfaces.UserTurn


class TextModel(Protocol):
  def complete(self, prompts: Sequence[str], task: str,
               prefixes: Optional[Sequence[str]] = None) -> list[str]:
    """First line of each prompt's continuation (after the forced prefix, when given)."""

  def score(self, prompts: Sequence[str], task: str,
            continuations: Sequence[Sequence[str]]) -> list[np.ndarray]:
    """Per prompt, the log-likelihood of each of its continuations (`ranking="score"` only)."""


RETRIEVERS = ("search", "dense", "hybrid")
RANKINGS = ("generate", "score")
RRF_K = 60          # reciprocal rank fusion constant (Cormack et al., 2009)


def fuse(rankings: Sequence[Sequence[str]], k: int, rrf_k: int = RRF_K) -> list[str]:
  """Reciprocal rank fusion: items by sum over rankings of 1 / (rrf_k + rank), rank from 1;
  ties keep the order of first appearance."""
  score: dict = {}
  for r in rankings:
    for rank, i in enumerate(r, 1):
      score[i] = score.get(i, 0.0) + 1.0 / (rrf_k + rank)
  order = sorted(score, key=lambda i: -score[i])          # sorted is stable
  return order[:k]


class MemorizedTextModel:
  """Answers from (prompt, target) pairs; a prompt seen with several targets (two users with
  the same goal and different phrasings) gives them in the order of the pairs, the last one
  thereafter. `fallback` for unseen prompts; counts calls per task and misses."""

  def __init__(self, pairs, fallback: str = ""):
    self.table: dict = {}
    for p, t in pairs:
      self.table.setdefault(p, []).append(t)
    self.fallback = fallback
    self.calls: dict = {}
    self.misses = 0

  def complete(self, prompts, task, prefixes=None):
    """The stored completion of each prompt (a lookup table; counts calls per task)."""
    self.calls[task] = self.calls.get(task, 0) + 1
    out = []
    for j, p in enumerate(prompts):
      queue = self.table.get(p)
      if not queue:
        self.misses += 1
        out.append(self.fallback)
        continue
      t = queue.pop(0) if len(queue) > 1 else queue[0]
      if prefixes is not None:
        t = t[len(prefixes[j]):] if t.startswith(prefixes[j]) else self.fallback
      out.append(t)
    return out

  def score(self, prompts, task, continuations):
    """0 for the continuations the next answer starts with, -inf for the others (the queue is
    not consumed: `complete` with the chosen prefix follows)."""
    self.calls[task + " score"] = self.calls.get(task + " score", 0) + 1
    out = []
    for p, cs in zip(prompts, continuations):
      queue = self.table.get(p) or [None]
      t = queue[0]
      out.append(np.array([0.0 if t is not None and t.startswith(c) else -np.inf for c in cs]))
    return out


PROFILES = ("given", "written", "none")


class LLMRecommender:
  """RecLLM's dialogue manager, query writer and ranker over one text model. `profile`: which
  user profile the prompts show: "given" (the session's, from the environment), "written"
  (the model's own "profile" task writes it from the session's watch history, once per
  session, as RecLLM's profile writer), or "none"."""

  def __init__(self, model: TextModel, catalogue: catalogue_lib.Catalogue,
               index: Optional[search_lib.SearchIndex] = None, profile: str = "given", *,
               retriever: str = "search", dense: Optional[dual_encoder.DenseIndex] = None,
               ranking: str = "generate", slate: int = 1):
    if slate < 1:
      raise ValueError(f"LLMRecommender.slate must be >= 1, got {slate}")
    self.slate = slate
    self.model, self.catalogue, self.by_id = model, catalogue, catalogue.by_id
    self.index = index or search_lib.SearchIndex(catalogue.items, catalogue.schema)
    self.profile, self.retriever, self.dense, self.ranking = profile, retriever, dense, ranking
    for name, value, allowed in (("profile", profile, PROFILES),
                                 ("retriever", retriever, RETRIEVERS),
                                 ("ranking", ranking, RANKINGS)):
      if value not in allowed:
        raise ValueError(f"LLMRecommender.{name} must be one of {allowed}, got {value!r}")
    if retriever != "search" and dense is None:
      raise ValueError(f"LLMRecommender: retriever={retriever!r} needs a dense index")
    self.written: dict = {}     # session id -> the profile the model wrote

  def _view(self, s: Session) -> Session:
    if self.profile == "given":
      return s
    return text_lib.with_profile(s, self.written.get(s.session_id, ""))

  def _write_profiles(self, sessions: Sequence[Session]) -> None:
    if self.profile != "written":
      return
    todo = [s for s in sessions if s.session_id not in self.written]
    for s in todo:
      self.written[s.session_id] = ""          # no history: no profile
    todo = [s for s in todo if s.history]
    if todo:
      texts = self.model.complete(
          [text_lib.profile_prompt([self.by_id[i] for i in s.history]) for s in todo], "profile")
      for s, t in zip(todo, texts):
        self.written[s.session_id] = t.strip()

  def respond(self, sessions: Sequence[Session]) -> list[SystemTurn]:
    """The LLM recommender's turns: profile, dialogue action, then a question or a retrieval,
    ranking and explanation."""
    self._write_profiles(sessions)
    out: list = [None] * len(sessions)
    need_dm = []
    for j, s in enumerate(sessions):
      exp = self._pending_explanation(s)
      if exp is not None:
        out[j] = exp
      else:
        need_dm.append(j)
    actions = self.model.complete([text_lib.dm_prompt(self._view(sessions[j]))
                                   for j in need_dm], "dm") if need_dm else []
    search = []
    for j, a in zip(need_dm, actions):
      kind, _, said = text_lib.parse_dm(a, self.catalogue.schema)
      if kind == "ask":
        out[j] = SystemTurn(said, "ask")
      else:
        search.append(j)
    if search:
      queries, cands = self._retrieve([sessions[j] for j in search])
      top = [c[:text_lib.NUM_CANDIDATES] for c in cands]
      prompts = [text_lib.rank_prompt(self._view(sessions[j]), [self.by_id[i] for i in c])
                 for j, c in zip(search, top)]
      ranked = self._rank(prompts, [len(c) for c in top])
      for j, q, c, t5, (order, texts) in zip(search, queries, cands, top, ranked):
        ids = [t5[k] for k in order]
        texts = [t or f"How about {self.by_id[i].title}?" for i, t in zip(ids, texts)]
        said = " ".join(texts)
        out[j] = SystemTurn(said, "recommend", items=tuple(ids),
                            explanations={i: text_lib.explanation_of(t)
                                          for i, t in zip(ids, texts)},
                            retrieved=tuple(c), query=q.strip())
    return out

  def _retrieve(self, sessions: Sequence[Session]) -> tuple[list[str], list[list[str]]]:
    """(query written per session, or "" without the query writer; 10 candidates each)."""
    queries = [""] * len(sessions)
    if self.retriever != "dense":
      queries = self.model.complete([text_lib.query_prompt(self._view(s)) for s in sessions],
                                    "query")
    cands = []
    for s, q in zip(sessions, queries):
      shown = s.shown()
      found = []
      if self.retriever != "dense":
        found.append(self.index.search(q, k=10, exclude=shown))
      if self.retriever != "search":
        found.append(self.dense.search(dual_encoder.conversation_text(s.turns), k=10,
                                       exclude=shown))
      cands.append(fuse(found, 10))
    return queries, cands

  def _rank(self, prompts: Sequence[str], sizes: Sequence[int]
            ) -> list[tuple[list[int], list[str]]]:
    """Per prompt with `sizes[j]` candidates: (0-based candidates to show, best first, at most
    `slate`; the recommendation text written for each)."""
    if self.ranking == "generate":
      picks = [text_lib.parse_pick(p, n)
               for p, n in zip(self.model.complete(prompts, "rank"), sizes)]
      orders = [[k] + [x for x in range(n) if x != k] for (k, _), n in zip(picks, sizes)]
      texts = [[t] for _, t in picks]
    else:
      scores = self.model.score(prompts, "rank", [[f"{k + 1}:" for k in range(n)]
                                                  for n in sizes])
      orders = [list(np.argsort(-np.asarray(sc), kind="stable")) for sc in scores]
      texts = [[] for _ in prompts]
    orders = [[int(k) for k in o[:self.slate]] for o in orders]
    todo = [(j, k) for j, o in enumerate(orders) for k in o[len(texts[j]):]]
    if todo:                      # the text after each shown candidate's forced "<k>:"
      more = self.model.complete([prompts[j] for j, _ in todo], "rank",
                                 prefixes=[f"{k + 1}:" for _, k in todo])
      for (j, _), t in zip(todo, more):
        texts[j].append(t.strip())
    return list(zip(orders, texts))

  def _pending_explanation(self, s: Session) -> Optional[SystemTurn]:
    users = s.user_turns()
    if not users or users[-1].intent != "explain":
      return None
    asked = [i for i, r in users[-1].reactions.items() if r == "ask"]
    for t in reversed(s.system_turns()):
      for i in asked:
        if i in t.explanations:
          return SystemTurn(t.explanations[i], "reply", explanations={i: t.explanations[i]})
    return None


class LLMSimulator:
  """The learned user simulator: goal (session-level) and intent (turn-level, `forced_intents`
  or "any") in the prompt; the model writes "<intent>: <utterance>"."""

  def __init__(self, model: TextModel):
    self.model = model

  def respond(self, sessions: Sequence[Session]) -> list[UserTurn]:
    """The learned simulator's user turns (with the forced intent when the session has one)."""
    outs = self.model.complete([text_lib.user_prompt(s, s.next_intent()) for s in sessions],
                               "user")
    return [self._turn(s, o) for s, o in zip(sessions, outs)]

  @staticmethod
  def _turn(s: Session, out: str) -> UserTurn:
    intent, utterance = text_lib.parse_user(out)
    last = next((t for t in reversed(s.turns) if isinstance(t, SystemTurn)), None)
    items = list(last.items) if last is not None and last.kind == "recommend" else []
    if last is not None and last.kind == "reply":
      items = list(last.explanations)
    reactions = {}
    if items and intent in ("accept", "refine", "reject", "explain"):
      verdict = {"accept": "accept", "explain": "ask"}.get(intent, "reject")
      reactions = {i: "reject" for i in items}
      reactions[items[0]] = verdict
    elif intent in ("accept", "explain"):   # nothing on the table to react to
      intent = "inform"
    return UserTurn(utterance, intent, reactions)
