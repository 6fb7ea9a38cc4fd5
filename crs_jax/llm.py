"""The LLM recommender and the LLM user simulator: RecLLM's components as prompts to one text
model (`TextModel`), each call batched over every live session of the turn.

    class TextModel(Protocol):
      def complete(self, prompts: Sequence[str], task: str) -> list[str]   # one line each

Recommender turn (per session): an explanation request is answered with the explanation the
ranker wrote when it recommended the item (no call); otherwise the dialogue manager (`dm`)
chooses ask or search; for search the query writer (`query`) writes a request for the
search API (`crs_jax.search`, attribute filters + BM25 over the whole, growing catalogue), and
the ranker (`rank`) picks one of the first `NUM_CANDIDATES` results and explains it. So a turn
costs at most three sampler calls for all sessions together. The simulator makes one call per
turn; its reactions follow its own stated intent (accept -> the recommended item, refine /
reject -> reject it, explain -> ask about it).

`SamplerTextModel` is the in-process JAX sampler (greedy, first line, task ids for routed
adapters); `MemorizedTextModel` answers from (prompt, target) pairs (the teacher's own
labels), which pins that inference builds exactly the prompts training saw.
"""

from __future__ import annotations

from typing import Optional, Protocol, Sequence

from crs_jax import baselines
from crs_jax import catalogue as catalogue_lib
from crs_jax import interfaces
from crs_jax import search as search_lib
from crs_jax import text as text_lib

Session = interfaces.Session
SystemTurn = interfaces.SystemTurn
UserTurn = interfaces.UserTurn


class TextModel(Protocol):
  def complete(self, prompts: Sequence[str], task: str) -> list[str]:
    ...


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

  def complete(self, prompts, task):
    self.calls[task] = self.calls.get(task, 0) + 1
    out = []
    for p in prompts:
      queue = self.table.get(p)
      if not queue:
        self.misses += 1
        out.append(self.fallback)
      else:
        out.append(queue.pop(0) if len(queue) > 1 else queue[0])
    return out


PROFILES = ("given", "written", "none")


class LLMRecommender:
  """RecLLM's dialogue manager, query writer and ranker over one text model. `profile`: which
  user profile the prompts show: "given" (the session's, from the environment), "written"
  (the model's own "profile" task writes it from the session's watch history, once per
  session, as RecLLM's profile writer), or "none"."""

  def __init__(self, model: TextModel, catalogue: catalogue_lib.Catalogue,
               index: Optional[search_lib.SearchIndex] = None, profile: str = "given"):
    self.model, self.catalogue, self.by_id = model, catalogue, catalogue.by_id
    self.index = index or search_lib.SearchIndex(catalogue.items)
    self.profile = profile
    if self.profile not in PROFILES:
      raise ValueError(f"LLMRecommender.profile must be one of {PROFILES}, got {profile!r}")
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
      kind, attr = text_lib.parse_dm(a)
      if kind == "ask":
        out[j] = SystemTurn(baselines.ASK[attr], "ask")
      else:
        search.append(j)
    if search:
      queries = self.model.complete([text_lib.query_prompt(self._view(sessions[j]))
                                     for j in search], "query")
      cands = [self.index.search(q, k=10, exclude=sessions[j].shown())
               for j, q in zip(search, queries)]
      picks = self.model.complete(
          [text_lib.rank_prompt(self._view(sessions[j]),
                                [self.by_id[i] for i in c[:text_lib.NUM_CANDIDATES]])
           for j, c in zip(search, cands)], "rank")
      for j, q, c, p in zip(search, queries, cands, picks):
        k, why = text_lib.parse_pick(p, min(len(c), text_lib.NUM_CANDIDATES))
        it = self.by_id[c[k]]
        out[j] = SystemTurn(text_lib.recommend_text(it), "recommend", items=(it.id,),
                            explanations={it.id: f"It is {why}"}, retrieved=tuple(c),
                            query=q.strip())
    return out

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
