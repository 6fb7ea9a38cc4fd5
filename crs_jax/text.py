"""The text side of the one-backbone RecLLM: how sessions become prompts, what each task's
target is, and the teacher that labels bootstrap sessions.

Five tasks of one model (task-routed adapters pick experts per task):

    task      prompt ends with      target (one line)
    dm        "Action:"             the system's question ("Do you have a decade in mind?") |
                                    "search" (retrieve and recommend)
    query     "Query:"              the search request, e.g. "comedy 1990s, not French"
    rank      "Pick:"               "<k>: <the recommendation>" over the numbered candidates:
                                    "How about <title>? It has the comedy you asked for. It is
                                    a dark comedy from the 1990s, short, in French."
    profile   "Profile:"            the profile text of a viewing history
    user      "U:"                  "<intent>: <utterance>", the intent given or "any"

A prompt shows the session as lines "P: profile", "U: ...", "S: ..." (the last
`max_lines`); a recommendation line carries the item's metadata, so the user side can judge it.
The system's words are the model's own: the dialogue manager writes the question it asks (the
asked attribute is read back from the words by `nlu.asked_attribute`, as the user simulator
reads it) and the ranker writes the whole recommendation, title and an explanation grounded in
what the user said; an answer to "why?" is that explanation.
The teacher (`TeacherRecommender`) is the rule recommender whose pick among the search
candidates is the best one under the hidden utility, with its questions phrased several ways
(`QUESTIONS`): bootstrap sessions run with it and the rule simulator give exact labels for
every task (`examples`).
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Sequence

import numpy as np

from crs_jax import baselines
from crs_jax import catalogue as catalogue_lib
from crs_jax import goals as goals_lib
from crs_jax import interfaces
from crs_jax import nlu

TASKS = ("dm", "query", "rank", "profile", "user")
NUM_CANDIDATES = 5
Session = interfaces.Session


QUESTIONS = ("What {w} would you like?", "Which {w} do you prefer?",
             "Do you have a {w} in mind?", "Is there a {w} you are after?")


def question(attr: str, schema: catalogue_lib.Schema, k: int = 0) -> str:
  """The `k`-th phrasing of the system's question about `attr`."""
  return QUESTIONS[k % len(QUESTIONS)].format(w=schema.question_words(attr)[0])


def item_line(it: catalogue_lib.Item) -> str:
  """An item's title and metadata as the ranker and profile writer read it ("Zorvan: dark
  comedy, 1990s, short, French"; "Toy Story: Animation and Comedy, 1990s"): the ranker copies
  the title into the recommendation it writes."""
  v = it.attributes()
  if set(v) == set(catalogue_lib.ATTRIBUTE_NAMES):
    return f"{it.title}: {v['mood']} {v['genre']}, {v['era']}, {v['length']}, {v['language']}"
  return f"{it.title}: " + ", ".join(v.values())


def short_explanation(it: catalogue_lib.Item) -> str:
  v = it.attributes()
  if set(v) == set(catalogue_lib.ATTRIBUTE_NAMES):
    return catalogue_lib.SYNTHETIC.describe(it) + "."
  return catalogue_lib.Schema.infer([it]).describe(it) + "."


def grounded_explanation(it: catalogue_lib.Item, want: dict) -> str:
  """Why `it`: the values of it the user asked for (`want`, attr -> value, as
  `baselines.stated_preferences`), then its metadata."""
  hits = baselines.asked_values(it, want)
  lead = f"It has the {' and '.join(hits)} you asked for. " if hits else ""
  return f"{lead}It is {short_explanation(it)}"


def recommendation(it: catalogue_lib.Item, want: dict) -> str:
  """The recommendation the ranker learns to write: "How about <title>? <why>"."""
  return f"How about {it.title}? {grounded_explanation(it, want)}"


def explanation_of(utterance: str) -> str:
  """The explanation part of a written recommendation (what follows "How about <title>?")."""
  head, sep, rest = utterance.strip().partition("?")
  return rest.strip() if sep and head.lower().startswith("how about") and rest.strip() \
      else utterance.strip()


def conversation(s: Session, max_lines: int = 24, upto: Optional[int] = None) -> str:
  turns = s.turns if upto is None else s.turns[:upto]
  lines = [("U: " if isinstance(t, interfaces.UserTurn) else "S: ") + t.text for t in turns]
  head = [f"P: {s.profile}"] if s.profile else []
  return "\n".join(head + lines[-max_lines:])


def dm_prompt(s: Session, **kw) -> str:
  return conversation(s, **kw) + "\nAction:"


def query_prompt(s: Session, **kw) -> str:
  return conversation(s, **kw) + "\nQuery:"


def rank_prompt(s: Session, candidates: Sequence[catalogue_lib.Item], **kw) -> str:
  cands = "\n".join(f"{k + 1}. {item_line(it)}" for k, it in enumerate(candidates))
  return conversation(s, **kw) + "\nCandidates:\n" + cands + "\nPick:"


def profile_prompt(history: Sequence[catalogue_lib.Item]) -> str:
  return "History:\n" + "\n".join(f"- {item_line(it)}" for it in history) + "\nProfile:"


def goal_text(g: goals_lib.Goal) -> str:
  want = ", ".join(g.constraints.values())
  likes = ", ".join(v for d in g.likes.values() for v in d)
  avoid = ", ".join(v for d in g.dislikes.values() for v in d)
  return f"Goal: must be {want}; likes {likes}; avoids {avoid}"


def user_prompt(s: Session, intent: Optional[str] = None, **kw) -> str:
  body = conversation(without_profile(s), **kw)
  return f"{goal_text(s.goal)}\nIntent: {intent or 'any'}\n{body}\nU:"


def without_profile(s: Session) -> Session:
  return with_profile(s, "")


def with_profile(s: Session, profile: str) -> Session:
  return dataclasses.replace(s, profile=profile)


def dm_target(t: interfaces.SystemTurn) -> str:
  """The dialogue manager's answer for system turn `t`: its question, or "search"."""
  return t.text if t.kind == "ask" else "search"


def parse_dm(text: str, schema: catalogue_lib.Schema = catalogue_lib.SYNTHETIC
             ) -> tuple[str, Optional[str], str]:
  """(kind, asked attribute, utterance) of the dialogue manager's answer. A question (words
  with a "?") is the system's turn as written: ("ask", the attribute the words ask about, None
  if they name none, the words up to the first "?"). The older label form "ask <attribute>"
  reads as that attribute's question. Anything else ("search", nothing, words that ask
  nothing) is ("search", None, "")."""
  words = text.strip().split()
  names = {a.lower(): a for a in schema.names}
  if len(words) == 2 and words[0].lower() == "ask" and words[1].lower() in names:
    attr = names[words[1].lower()]
    return "ask", attr, question(attr, schema)
  said, sep, _ = text.strip().partition("?")
  if not sep or not said.strip() or said.split()[0].lower().rstrip(".:") == "search":
    return "search", None, ""
  return "ask", nlu.asked_attribute(said, schema), said.strip() + "?"


def parse_pick(text: str, n: int) -> tuple[int, str]:
  """(0-based candidate, explanation) from "<k>: <explanation>"; candidate 0 when unreadable."""
  head, _, rest = text.strip().partition(":")
  try:
    k = int(head.strip()) - 1
  except ValueError:
    return 0, text.strip()
  return (k if 0 <= k < n else 0), rest.strip()


def parse_user(text: str) -> tuple[str, str]:
  """(intent, utterance) from "<intent>: <utterance>"; unknown intents read as "inform"."""
  head, sep, rest = text.strip().partition(":")
  if sep and head.strip() in interfaces.INTENTS:
    return head.strip(), rest.strip()
  return "inform", text.strip()


DECISION_TASKS = ("dm", "rank", "user")


def decision_of(task: str, text: str, schema: catalogue_lib.Schema = catalogue_lib.SYNTHETIC):
  """The decision a task's answer carries, read from its words: `dm` (kind, asked attribute) as
  `parse_dm` reads it; `rank` the candidate number before ":"; `user` the intent before ":".
  None when the words carry no readable decision (an unknown intent, no number)."""
  if task == "dm":
    return parse_dm(text, schema)[:2]
  head, sep, _ = text.strip().partition(":")
  head = head.strip()
  if task == "rank":
    return int(head) if sep and head.isdigit() else None
  if task == "user":
    return head if sep and head in interfaces.INTENTS else None
  raise ValueError(f"decision_of: task {task!r} has no decision; these do: {DECISION_TASKS}")


def decision_metric(task: str):
  """seqio metric_fn for `task`: "decision", the percentage of answers whose decision
  (`decision_of`) equals a reference's. Exact match compares the words (a question in another
  phrasing, an explanation worded differently); this scores what the system or user chose."""
  def fn(targets, predictions) -> dict:
    hits = 0
    for t, p in zip(targets, predictions):
      refs = list(t) if isinstance(t, (list, tuple)) else [t]
      mine = decision_of(task, p)
      hits += mine is not None and any(mine == decision_of(task, r) for r in refs)
    return {"decision": 100.0 * hits / max(len(predictions), 1)}
  return fn


class TeacherRecommender(baselines.RuleRecommender):
  """The rule recommender, but its pick among the first `NUM_CANDIDATES` search results is the
  best under the hidden utility (ties: the earlier result), recommended with the text the LLM
  ranker learns to write (`recommendation`); its questions are phrased by the session's
  "teacher-text" stream (`question`)."""

  def turn(self, s):
    out = super().turn(s)
    if out.kind != "ask":
      return out
    attr = nlu.asked_attribute(out.text, self.schema)
    k = int(s.rng("teacher-text").integers(len(QUESTIONS)))
    return interfaces.SystemTurn(question(attr, self.schema, k), "ask")

  def _explain_or(self, s):
    out = super()._explain_or(s)
    if out.kind == "reply":            # an explanation: the one given with the recommendation
      i = next(iter(out.explanations))
      for t in reversed(s.system_turns()):
        if i in t.explanations:
          exp = t.explanations[i]
          return interfaces.SystemTurn(exp, "reply", explanations={i: exp})
    return out

  def _recommend(self, s, item_id, retrieved=()):
    cands = list(retrieved)[:NUM_CANDIDATES] or [item_id]
    best = max(cands, key=lambda i: (s.judgement.utilities[i], -cands.index(i)))
    it = self.by_id[best]
    want, _ = baselines.stated_preferences(s, self.schema)
    said = recommendation(it, want)
    return interfaces.SystemTurn(said, "recommend", items=(best,),
                                 explanations={best: explanation_of(said)},
                                 retrieved=tuple(retrieved))


def examples(sessions: Sequence[Session], cat: catalogue_lib.Catalogue,
             rng: np.random.Generator, *, p_forced_intent: float = 0.5,
             history_len: int = 6) -> dict[str, list[tuple[str, str]]]:
  """(prompt, target) pairs per task from finished teacher sessions."""
  by_id = cat.by_id
  out = {t: [] for t in TASKS}
  for s in sessions:
    for j, t in enumerate(s.turns):
      prefix = Session(session_id=s.session_id, seed=s.seed, goal=s.goal,
                       judgement=s.judgement, profile=s.profile, turns=s.turns[:j])
      if isinstance(t, interfaces.SystemTurn):
        users = prefix.user_turns()
        if users and users[-1].intent == "explain":
          continue                         # answered without the dialogue manager
        out["dm"].append((dm_prompt(prefix), dm_target(t)))
        if t.kind == "recommend":
          want, avoid = baselines.stated_preferences(prefix, cat.schema)
          out["query"].append((query_prompt(prefix), baselines.RuleRecommender.query(want, avoid)))
          cands = [by_id[i] for i in t.retrieved[:NUM_CANDIDATES]]
          k = [c.id for c in cands].index(t.items[0])
          out["rank"].append((rank_prompt(prefix, cands), f"{k + 1}: {t.text}"))
      else:
        forced = t.intent if rng.random() < p_forced_intent else None
        out["user"].append((user_prompt(prefix, forced), f"{t.intent}: {t.text}"))
    hist = goals_lib.history(s.goal, cat, rng, n=history_len)
    out["profile"].append((profile_prompt([by_id[i] for i in hist]),
                           goals_lib.profile_text(hist, cat)))
  return out
