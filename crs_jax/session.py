"""The session runner: many simulated sessions advanced in lockstep (one recommender call and
one simulator call per turn for all live sessions), written as JSONL exactly once each.

    records = run_sessions(recommender, simulator, catalogue, num_sessions=200, seed=0,
                           max_turns=8, out_path="sessions.jsonl")

Session k has id `s{k:05d}` and its own seed (`session_seed`), from which its goal, viewing
history, profile and every random choice of the components come (`Session.rng`): a session's
record does not depend on the batch it ran in. A session ends when the user accepts an item or
after `max_turns` system turns. Each finished session is appended and fsynced at once; on
restart a torn last line is cut off and finished ids are skipped, so a run killed at any point
and resumed ends with every session exactly once, equal to an uninterrupted run.
"""

from __future__ import annotations

import dataclasses
import json
import os
import zlib
from typing import Callable, Optional, Sequence

import numpy as np

from crs_jax import catalogue as catalogue_lib
from crs_jax import goals as goals_lib
from crs_jax import interfaces
from mode_jax import atomic_io

Session = interfaces.Session


class SessionFileError(ValueError):
  """A malformed sessions file: the message names the file, line and field."""


def session_id(k: int) -> str:
  """The id of session k ("s00042")."""
  return f"s{k:05d}"


def session_seed(seed: int, sid: str) -> int:
  """The seed of session `sid`: independent of the order sessions run in."""
  return int(np.random.SeedSequence([seed, zlib.crc32(sid.encode())]).generate_state(1)[0])


def new_session(sid: str, seed: int, cat: catalogue_lib.Catalogue, *, accept_k: int = 3,
                history_len: int = 8, forced_intents=None) -> Session:
  """A new session with its goal, judgement and (optional) forced intents."""
  sseed = session_seed(seed, sid)
  rng = np.random.default_rng([sseed, 0])
  goal = goals_lib.sample_goal(cat, rng, accept_k=accept_k)
  hist = goals_lib.history(goal, cat, rng, n=history_len)
  return Session(session_id=sid, seed=sseed, goal=goal, judgement=goals_lib.judge(goal, cat),
                 profile=goals_lib.profile_text(hist, cat), forced_intents=forced_intents,
                 history=tuple(hist))


@dataclasses.dataclass(frozen=True)
class User:
  """A user brought from outside the goal sampler (e.g. one grounded in real ratings): the goal
  the simulator plays, the judgement that decides what they accept (its `acceptable` set and
  `target` may be any items, e.g. their held-out liked movies), the items they watched and the
  profile text the recommender is shown."""
  goal: goals_lib.Goal
  judgement: goals_lib.Judgement
  history: tuple = ()
  profile: str = ""
  user_id: str = ""

  def __post_init__(self):
    j = self.judgement
    if not j.acceptable or j.target not in j.acceptable:
      raise ValueError(f"User {self.user_id!r}: the judgement's target {j.target!r} must be "
                       "among its acceptable items (and that set non-empty)")


def user_session(sid: str, seed: int, user: User, forced_intents=None) -> Session:
  """A new session of an outside `User` (seeded as `new_session` seeds its sessions)."""
  return Session(session_id=sid, seed=session_seed(seed, sid), goal=user.goal,
                 judgement=user.judgement, profile=user.profile, forced_intents=forced_intents,
                 history=tuple(user.history), user_id=user.user_id)


def ended(s: Session, max_turns: int) -> bool:
  """Whether the session is over (accepted, or out of turns after a user turn)."""
  return s.accepted() is not None or (len(s.system_turns()) >= max_turns
                                      and isinstance(s.turns[-1], interfaces.UserTurn))


def success_turn(s: Session) -> Optional[int]:
  """Number of system turns up to the user's acceptance, or None."""
  k = 0
  for t in s.turns:
    if isinstance(t, interfaces.SystemTurn):
      k += 1
    elif any(r == "accept" for r in t.reactions.values()):
      return k
  return None


def to_record(s: Session) -> dict:
  """The finished session as a JSON record."""
  return {"session_id": s.session_id, "seed": s.seed, "goal": s.goal.to_json(),
          "target": s.judgement.target, "acceptable": sorted(s.judgement.acceptable),
          "profile": s.profile, "history": list(s.history),
          "turns": [t.to_json() for t in s.turns],
          "accepted": s.accepted(), "success_turn": success_turn(s),
          "num_system_turns": len(s.system_turns()),
          **({"user_id": s.user_id} if s.user_id else {})}


_RECORD_FIELDS = ("session_id", "goal", "target", "acceptable", "turns")


def check_record(rec: dict, where: str) -> dict:
  """`rec` when it has every record field, else a ValueError naming `where` and the field."""
  for f in _RECORD_FIELDS:
    if f not in rec:
      raise SessionFileError(f"{where}: missing field {f!r}")
  if not isinstance(rec["turns"], list):
    raise SessionFileError(f"{where}: field 'turns' must be a list")
  for j, t in enumerate(rec["turns"]):
    try:
      interfaces.turn_from_json(t)
    except (KeyError, TypeError, ValueError) as e:
      raise SessionFileError(f"{where}: field 'turns[{j}]': {e}") from None
  try:
    goals_lib.Goal.from_json(rec["goal"])
  except (KeyError, TypeError, AttributeError, ValueError) as e:
    raise SessionFileError(f"{where}: field 'goal': {e!r}") from None
  return rec


def read_sessions(path: str) -> list[dict]:
  """Records of a sessions JSONL file; errors name the file, line and field."""
  if not os.path.isfile(path):
    raise SessionFileError(f"{path}: missing")
  return [check_record(rec, f"{path}:{n}")
          for n, rec in atomic_io.jsonl_records(path, error_cls=SessionFileError)]


class SessionLog:
  """Append-only sessions.jsonl with exactly-once appends (torn last line cut on open)."""

  def __init__(self, path: str):
    self.path = path
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    self.done: dict[str, dict] = {r["session_id"]: r for r in atomic_io.recover_jsonl(path)}

  def append(self, rec: dict) -> None:
    """Appends one record (fsync'ed)."""
    with open(self.path, "ab") as f:
      f.write((json.dumps(rec) + "\n").encode())
      f.flush()
      os.fsync(f.fileno())
    self.done[rec["session_id"]] = rec


def run_sessions(recommender: interfaces.Recommender, simulator: interfaces.UserSimulator,
                 cat: catalogue_lib.Catalogue, *, num_sessions: Optional[int] = None,
                 seed: int = 0, max_turns: int = 8, out_path: Optional[str] = None,
                 batch_size: int = 0, accept_k: int = 3, forced_intents: Optional[Callable] = None,
                 users: Optional[Sequence[User]] = None,
                 log: Callable = lambda msg: None) -> list[dict]:
  """Records of sessions 0..num_sessions-1 in id order (finished ones read back from
  `out_path`). `forced_intents(sid)` -> intents for the simulator's turns (control), or None.
  `batch_size` sessions run in lockstep (0: all pending at once). `users`: a population from
  outside, session k plays users[k] (num_sessions defaults to all of them); without it each
  session samples its own goal from the catalogue."""
  if users is not None:
    num_sessions = len(users) if num_sessions is None else num_sessions
    if num_sessions > len(users):
      raise ValueError(f"run_sessions: num_sessions={num_sessions} but only {len(users)} users")
  elif num_sessions is None:
    raise ValueError("run_sessions: give num_sessions (or a population of users)")

  def start(k: int, sid: str) -> Session:
    forced = forced_intents(sid) if forced_intents else None
    if users is not None:
      return user_session(sid, seed, users[k], forced)
    return new_session(sid, seed, cat, accept_k=accept_k, forced_intents=forced)

  store = SessionLog(out_path) if out_path else None
  done = dict(store.done) if store else {}
  ids = [session_id(k) for k in range(num_sessions)]
  pending = [k for k, i in enumerate(ids) if i not in done]
  step = batch_size or max(len(pending), 1)
  for b in range(0, len(pending), step):
    batch = [start(k, ids[k]) for k in pending[b:b + step]]
    live = list(batch)
    for s, t in zip(live, simulator.respond(live)):
      s.turns.append(t)
    while live:
      for s, t in zip(live, recommender.respond(live)):
        s.turns.append(t)
      for s, t in zip(live, simulator.respond(live)):
        s.turns.append(t)
      still = []
      for s in live:
        if ended(s, max_turns):
          rec = to_record(s)
          done[s.session_id] = rec
          if store:
            store.append(rec)
        else:
          still.append(s)
      live = still
    log(f"sessions {len(done)}/{num_sessions}")
  return [done[i] for i in ids]


def sessions_from_records(records: Sequence[dict], cat: catalogue_lib.Catalogue) -> list[Session]:
  """Session objects of stored records (for the dense retriever's training pairs)."""
  out = []
  for r in records:
    goal = goals_lib.Goal.from_json(r["goal"])
    s = Session(session_id=r["session_id"], seed=r.get("seed", 0), goal=goal,
                judgement=goals_lib.judge(goal, cat), profile=r.get("profile", ""),
                turns=[interfaces.turn_from_json(t) for t in r["turns"]],
                history=tuple(r.get("history", ())), user_id=r.get("user_id", ""))
    out.append(s)
  return out
