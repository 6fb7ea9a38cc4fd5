"""The session sets of the RecLLM job: which recommender talks to which user simulator, under
a display name (the results table's row) and a file stem (the resumable
`<workdir>/sessions/<stem>.jsonl`), with a role the job selects sets by (never by display
name).

Roles: "recllm" (the LLM recommender and its `sessions.variants`, with the rule simulator),
"baseline" (random / popularity / rule / teacher / oracle, with the rule simulator),
"llm_simulator" (the teacher with the learned simulator) and "llm_simulator_forced" (the same
under forced intents, the controllability test). The conversation report compares the
"llm_simulator" set with the teacher baseline (same recommender, two users).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Sequence

import numpy as np

from crs_jax import baselines, dual_encoder, interfaces, llm, rule_simulator
from crs_jax import text as text_lib

RECLLM_NAME = "RecLLM (LLM recommender)"
LLM_SIMULATOR_NAME = "teacher + LLM simulator"
FORCED_NAME = "teacher + LLM simulator, forced intents"


@dataclasses.dataclass(frozen=True)
class SessionSet:
  """One row of the session table.

  Attributes:
    name: the display name (results.json and the table).
    role: "recllm", "baseline", "llm_simulator" or "llm_simulator_forced".
    key: the baseline's name ("teacher", "rule", ...) or the RecLLM variant
      ("search/generate"); empty for the simulator sets.
    recommender, simulator: who talks.
    forced: session id -> forced intents per user turn (None: free).
  """
  name: str
  role: str
  key: str
  recommender: interfaces.Recommender
  simulator: interfaces.UserSimulator
  forced: Optional[Callable] = None

  @property
  def stem(self) -> str:
    """The sessions file's stem (stable: a resumed job finds its finished sets)."""
    return (self.name.split(" (")[0].replace(" ", "_").replace(",", "")
            .replace("+", "and"))


def forced_intents(seed: int, num_turns: int) -> Callable:
  """sid -> a random intent per user turn (opening: inform or chit-chat)."""
  def fn(sid):
    rng = np.random.default_rng([seed, int(sid[1:])])
    first = ("inform", "chitchat")[rng.integers(2)]
    rest = [interfaces.INTENTS[i] for i in rng.integers(len(interfaces.INTENTS), size=num_turns)]
    return [first] + rest
  return fn


def recllm_variants(scfg) -> list[tuple[str, str]]:
  """(retriever, ranking) of the configured LLM recommender, then of `sessions.variants`
  ("<retriever>/<ranking>"); a malformed variant is a ValueError naming the field."""
  main = (scfg.retriever, scfg.ranking)
  wanted = [main] + [tuple(v.split("/")) for v in scfg.variants]
  for v in wanted:
    if len(v) != 2:
      raise ValueError(f"config.sessions.variants: {'/'.join(v)!r} is not "
                       f"'<retriever>/<ranking>'")
  return wanted


def build(scfg, model, cat, *, seed: int, dense: Optional[Callable] = None) -> list[SessionSet]:
  """Every session set of the `config.sessions` block `scfg`, selected by `scfg.systems`.

  Args:
    model: the trained text model (all five RecLLM tasks).
    seed: the sessions' seed (forced intents are drawn from it).
    dense: `() -> DenseIndex`, called once when a variant retrieves densely.
  """
  sim = rule_simulator.RuleSimulator(cat)
  wanted = recllm_variants(scfg)
  index: Optional[dual_encoder.DenseIndex] = (
      dense() if dense is not None and any(r != "search" for r, _ in wanted) else None)
  slate = int(scfg.get("slate", 1))           # items per recommendation turn (the teacher: 1)
  sets = []
  for r, k in wanted:
    name = RECLLM_NAME if (r, k) == wanted[0] else f"RecLLM, {r} retrieval, {k}"
    rec = llm.LLMRecommender(model, cat, profile=scfg.profile, retriever=r, dense=index,
                             ranking=k, slate=slate)
    sets.append(SessionSet(name, "recllm", f"{r}/{k}", rec, sim))
  for b in scfg.baselines:
    rec = text_lib.TeacherRecommender(cat) if b == "teacher" else \
        baselines.BASELINES[b](cat, slate=slate)
    sets.append(SessionSet(b, "baseline", b, rec, sim))
  teacher = text_lib.TeacherRecommender(cat)
  sets.append(SessionSet(LLM_SIMULATOR_NAME, "llm_simulator", "", teacher,
                         llm.LLMSimulator(model)))
  sets.append(SessionSet(FORCED_NAME, "llm_simulator_forced", "", teacher,
                         llm.LLMSimulator(model), forced_intents(seed, scfg.max_turns + 1)))
  return select(sets, scfg.systems)


def select(sets: Sequence[SessionSet], systems: Sequence[str]) -> list[SessionSet]:
  """The sets named in `config.sessions.systems` (all when empty); "RecLLM" names every
  RecLLM row. An unknown name is a ValueError listing the known ones."""
  if not systems:
    return list(sets)
  names = {s.name for s in sets}
  unknown = [n for n in systems if n != "RecLLM" and n not in names]
  if unknown:
    raise ValueError(f"config.sessions.systems: unknown {unknown}; known: "
                     f"{['RecLLM'] + [s.name for s in sets if s.role != 'recllm']}")
  return [s for s in sets if s.name in systems or ("RecLLM" in systems and s.role == "recllm")]


def find(sets: Sequence[SessionSet], role: str, key: str = "") -> Optional[SessionSet]:
  """The first set of `role` (and `key` when given), or None."""
  return next((s for s in sets if s.role == role and (not key or s.key == key)), None)
