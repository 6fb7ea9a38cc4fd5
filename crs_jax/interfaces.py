"""The two extension points and the turns they exchange (small, like OmegaPRM's `Policy`).

    class Recommender(Protocol):
      def respond(self, sessions: Sequence[Session]) -> list[SystemTurn]
    class UserSimulator(Protocol):
      def respond(self, sessions: Sequence[Session]) -> list[UserTurn]

Both take a batch of sessions (the runner advances every live session by one turn per call,
so an LLM-backed implementation makes one sampler call per turn for all of them). A session
holds the hidden goal (only simulators and the oracle may read it), the user's profile text
and the turns so far. Randomness comes from `Session.rng(name)`: seeded by the session's seed,
the caller's name and the turn number, so a session's course never depends on which sessions
share its batches, and a resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import zlib
from typing import Optional, Protocol, Sequence

import numpy as np

from crs_jax import goals as goals_lib

SYSTEM_KINDS = ("ask", "request", "recommend", "reply")
INTENTS = ("inform", "explain", "reject", "refine", "accept", "chitchat")
REACTIONS = ("accept", "reject", "ask")


@dataclasses.dataclass(frozen=True)
class SystemTurn:
  text: str
  kind: str                                # one of SYSTEM_KINDS
  items: tuple = ()                        # recommended item ids, in slate order
  explanations: dict = dataclasses.field(default_factory=dict)   # item id -> text
  retrieved: tuple = ()                    # ranked candidate ids the turn was chosen from
  query: str = ""                          # the retrieval request, when kind == "request"

  def __post_init__(self):
    if self.kind not in SYSTEM_KINDS:
      raise ValueError(f"system turn kind {self.kind!r} not in {SYSTEM_KINDS}")

  def to_json(self) -> dict:
    """The turn as a JSON-able dict (role "system")."""
    d = dataclasses.asdict(self)
    d.update(role="system", items=list(self.items), retrieved=list(self.retrieved))
    return d


@dataclasses.dataclass(frozen=True)
class UserTurn:
  text: str
  intent: str                              # one of INTENTS
  reactions: dict = dataclasses.field(default_factory=dict)   # item id -> one of REACTIONS

  def __post_init__(self):
    if self.intent not in INTENTS:
      raise ValueError(f"user intent {self.intent!r} not in {INTENTS}")

  def to_json(self) -> dict:
    """The turn as a JSON-able dict (role "user")."""
    return dict(dataclasses.asdict(self), role="user")


def turn_from_json(d: dict):
  """A SystemTurn or UserTurn from its `to_json` dict (by "role")."""
  d = dict(d)
  role = d.pop("role", None)
  if role == "system":
    return SystemTurn(text=d["text"], kind=d["kind"], items=tuple(d.get("items", ())),
                      explanations=dict(d.get("explanations", {})),
                      retrieved=tuple(d.get("retrieved", ())), query=d.get("query", ""))
  if role == "user":
    return UserTurn(text=d["text"], intent=d["intent"], reactions=dict(d.get("reactions", {})))
  raise ValueError(f"turn role {role!r} is neither 'system' nor 'user'")


@dataclasses.dataclass
class Session:
  session_id: str
  seed: int
  goal: goals_lib.Goal
  judgement: goals_lib.Judgement
  profile: str = ""
  turns: list = dataclasses.field(default_factory=list)
  forced_intents: Optional[Sequence[str]] = None   # turn-level control of the simulator
  history: tuple = ()        # ids of the items the user watched (the profile is built from them)
  user_id: str = ""          # an outside user's id (`session.User`), else ""

  def rng(self, name: str) -> np.random.Generator:
    """A generator for `name` at this point of the session: depends on (seed, name, turn count)
    only, so sessions are reproducible whatever they are batched with."""
    return np.random.default_rng([self.seed, zlib.crc32(name.encode()), len(self.turns)])

  def system_turns(self) -> list:
    """The recommender's turns so far."""
    return [t for t in self.turns if isinstance(t, SystemTurn)]

  def user_turns(self) -> list:
    """The user's turns so far."""
    return [t for t in self.turns if isinstance(t, UserTurn)]

  def shown(self) -> list:
    """Recommended item ids in order, each once."""
    out = []
    for t in self.system_turns():
      out.extend(i for i in t.items if i not in out)
    return out

  def accepted(self) -> Optional[str]:
    """The item the user accepted (None: none yet)."""
    for t in self.user_turns():
      for i, r in t.reactions.items():
        if r == "accept":
          return i
    return None

  def next_intent(self) -> Optional[str]:
    """The intent the controller asks of the next user turn, if any."""
    k = len(self.user_turns())
    if self.forced_intents is not None and k < len(self.forced_intents):
      return self.forced_intents[k]
    return None


class Recommender(Protocol):
  def respond(self, sessions: Sequence[Session]) -> list[SystemTurn]:
    """The next system turn of each session (batched)."""
    ...


class UserSimulator(Protocol):
  def respond(self, sessions: Sequence[Session]) -> list[UserTurn]:
    """The next user turn of each session (batched)."""
    ...
