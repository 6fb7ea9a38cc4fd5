"""RecLLM's five components on any LLM without fine-tuning: each task's prompt (the same
`crs_jax.text` prompt the fine-tuned model reads) is preceded by an instruction and a few worked
examples of that task, taken from teacher sessions (`crs_jax.data.bootstrap`: the training
sessions, whose seed differs from the evaluated sessions'). A base model follows the examples
in context; an instruction-tuned one also reads the instruction.

    inner = sampler_model.TaskTextModel(serve.OpenAIClient(url, "gemma3_270m"))  # or serve.load
    model = few_shot.FewShotTextModel(inner, few_shot.shots_for(cat, seed=0), cat.schema)
    rec, sim = llm.LLMRecommender(model, cat), llm.LLMSimulator(model)

`config.served` in the RecLLM job (`crs_jax.job:crs_served`, `configs/crs_served.py`) runs every
session set on a served model this way. Shots are chosen per task for variety (round robin over
the kind of target: a question / "search" for the dialogue manager, each intent for the user),
shortest prompts first, so the header stays short; one header per task is the same text for
every call, which the project's server prefills once (prefix sharing).
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from crs_jax import catalogue as catalogue_lib
from crs_jax import interfaces, rule_simulator, sampler_model
from crs_jax import session as session_lib
from crs_jax import text as text_lib
from mode_jax import serve

TIMEOUT = 600.0     # seconds per request: a 270M model on 2 CPU cores takes minutes a batch
SHOTS = {"dm": 4, "query": 3, "rank": 2, "profile": 2, "user": 6}

INSTRUCTIONS = {
    "dm": ("You run a movie recommender's conversation. P: is the user's profile, U: the user, "
           "S: the system. Reply with the system's next question to the user, one short "
           "question about one of {attributes}; or reply 'search' when you know enough to "
           "recommend."),
    "query": ("Write the search query for the movie the user wants: the attribute values they "
              "asked for, then ', not <value>' for each value they rejected."),
    "rank": ("Pick the candidate that fits the user best and recommend it: reply '<number>: "
             "How about <title>? <why>', the why naming what the user asked for that it has, "
             "then its attributes."),
    "profile": "Describe the user's taste from the movies they watched, in one sentence.",
    "user": ("You are a user looking for a movie. Follow the goal and the intent (one of "
             "{intents}; 'any': your choice). Reply '<intent>: <what you say>'. Never name a "
             "movie the system has not shown."),
}


def kind_of(target: str) -> str:
  """"search", "question" (a dialogue manager's question) or the target's first word."""
  first = (target.split() or [""])[0].rstrip(":")
  return "question" if target.rstrip().endswith("?") else first


def select(pairs: Sequence[tuple[str, str]], k: int) -> list[tuple[str, str]]:
  """`k` (prompt, target) pairs: round robin over the kinds of target (`kind_of`: "search" or
  a question for the dialogue manager; the first word, e.g. the intent, otherwise; each kind's
  shortest prompts first), so every kind of answer is shown."""
  groups: dict = {}
  for p, t in sorted(pairs, key=lambda pt: (len(pt[0]), pt)):
    groups.setdefault(kind_of(t), []).append((p, t))
  out, j = [], 0
  while len(out) < k and any(j < len(g) for g in groups.values()):
    for key in sorted(groups):
      if j < len(groups[key]) and len(out) < k:
        out.append(groups[key][j])
    j += 1
  return out


def shots_for(cat: catalogue_lib.Catalogue, *, seed: int = 0, num_sessions: int = 30,
              counts: Optional[dict] = None) -> dict:
  """Worked examples per task from `num_sessions` teacher sessions (seed `seed`) on `cat`."""
  recs = session_lib.run_sessions(text_lib.TeacherRecommender(cat),
                                  rule_simulator.RuleSimulator(cat), cat,
                                  num_sessions=num_sessions, seed=seed)
  pairs = text_lib.examples(session_lib.sessions_from_records(recs, cat), cat,
                            np.random.default_rng(seed))
  counts = dict(SHOTS, **(counts or {}))
  return {t: select(pairs[t], counts[t]) for t in text_lib.TASKS}


def header(task: str, shots: Sequence[tuple[str, str]],
           schema: catalogue_lib.Schema = catalogue_lib.SYNTHETIC) -> str:
  """The instruction and worked examples put before every `task` prompt."""
  inst = INSTRUCTIONS[task].format(attributes=", ".join(schema.names),
                                   intents=", ".join(interfaces.INTENTS))
  body = "\n\n".join(f"{p} {t}" for p, t in shots)
  return f"{inst}\n\n{body}\n\n" if body else f"{inst}\n\n"


class FewShotTextModel:
  """A RecLLM `TextModel` (`crs_jax.llm.TextModel`) over `inner` with every prompt preceded
  by its task's `header`."""

  def __init__(self, inner, shots: dict, schema: catalogue_lib.Schema = catalogue_lib.SYNTHETIC):
    self.inner = inner
    self.headers = {t: header(t, shots.get(t, ()), schema) for t in text_lib.TASKS}

  @property
  def calls(self) -> dict:
    """The inner model's calls per task."""
    return getattr(self.inner, "calls", {})

  def complete(self, prompts, task, prefixes=None):
    """The inner model's completions of header + prompt."""
    return self.inner.complete([self.headers[task] + p for p in prompts], task, prefixes)

  def score(self, prompts, task, continuations):
    """The inner model's scores of the continuations after header + prompt."""
    return self.inner.score([self.headers[task] + p for p in prompts], task, continuations)


def served_model(scfg, cat: catalogue_lib.Catalogue, *, seed: int = 0):
  """The few-shot text model over the server of the `config.served` block `scfg` (url, model,
  chat, shot_sessions, timeout: seconds per request, `TIMEOUT` by default: a request times out
  and is sent again while the server still computes it, so a timeout shorter than one joined
  batch on a slow server multiplies its work)."""
  client = serve.OpenAIClient(scfg.url, scfg.model, chat=bool(scfg.get("chat", False)),
                              timeout=float(scfg.get("timeout", TIMEOUT)),
                              retry_window=max(600.0, 4 * float(scfg.get("timeout", TIMEOUT))))
  inner = sampler_model.TaskTextModel(client)
  shots = shots_for(cat, seed=seed, num_sessions=int(scfg.get("shot_sessions", 30)))
  return FewShotTextModel(inner, shots, cat.schema)
