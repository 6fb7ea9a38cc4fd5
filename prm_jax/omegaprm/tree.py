"""What the three search methods share: the tree of states (prefixes with MC estimates), the
labelled-prefix records, cost stats, and the driver that feeds a policy.

A search is a generator: it yields a list of (prefix, n) rollout requests for its question,
is sent back the completions (one list of n per request), and returns a `SearchResult`. The
driver (`drive`) runs many searches at once and merges the pending requests of a round into
one `policy.rollout` call per distinct n, which is how the in-process sampler batches all
pending rollouts of a round, and how `run_omegaprm` runs one question.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Generator, Optional, Sequence


from mode_jax.serve.api import Sample, call_seed, check_shape

Requests = list            # [(prefix, n)]


@dataclasses.dataclass
class State:
  """A solution prefix (whole pieces) of one question with its MC estimate."""
  id: int
  pieces: tuple
  parent: Optional[int]
  mc: float = 0.0
  rollouts: int = 0            # rollouts behind `mc` (0 for a complete solution)
  correct: int = 0
  visits: int = 0              # N(s)
  terminal: bool = False       # a complete solution: mc is its own correctness
  occurrences: int = 0         # times the search reached this prefix (see Tree.reach)

  @property
  def text(self) -> str:
    """The prefix text."""
    return "".join(self.pieces)


@dataclasses.dataclass
class Cost:
  policy_calls: int = 0        # rollout requests (one prefix, n completions each)
  rollouts: int = 0            # completions sampled
  tokens: int = 0              # generated tokens

  def add(self, comps: Sequence[Sample]) -> None:
    """Counts one policy call with its completions."""
    self.policy_calls += 1
    self.rollouts += len(comps)
    self.tokens += sum(c.num_tokens for c in comps)


@dataclasses.dataclass
class Localisation:
  """One incorrect solution whose first wrong piece a method located."""
  state_id: int                # where the solution's rollout started
  solution: tuple              # all pieces of the solution (prefix + rollout)
  predicted: int               # index of the piece predicted to be the first wrong one
  cost_rollouts: int           # rollouts this localisation spent


@dataclasses.dataclass
class SearchResult:
  method: str
  states: list                 # [State], root first
  localisations: list          # [Localisation]
  cost: Cost
  filtered: bool = False       # dropped by the root filter (0/n or n/n correct)
  root_mc: float = 0.0
  root_tokens: int = 0         # tokens of the root (filter) rollouts
  iterations: int = 0
  wall_seconds: float = 0.0

  def records(self, question: str, question_id: str = "", gold: str = "") -> list[dict]:
    """One record per labelled prefix (every state but the root): its pieces, the index of
    its last piece, the MC value (the soft label), 1[MC > 0] (the hard label), rollouts, and
    `occurrences`: how many labelled points the prefix stands for (the records the search
    would have written without sharing states by text; training and the label report weight
    by it, so a correct prefix that many solutions share is not outvoted by distinct wrong
    ones)."""
    out = []
    for s in self.states[1:]:
      out.append({"question_id": question_id, "question": question, "gold": gold,
                  "steps": list(s.pieces), "last_step": len(s.pieces) - 1, "mc": s.mc,
                  "hard_label": int(s.mc > 0),
                  "rollouts": s.rollouts, "correct_rollouts": s.correct,
                  "terminal": s.terminal, "state_id": s.id, "parent_id": s.parent,
                  "occurrences": s.occurrences, "method": self.method})
    return out

  def summary(self) -> dict:
    """The question's summary row (method, filtered, root MC, labels, cost, wall time)."""
    return {"method": self.method, "filtered": self.filtered, "root_mc": self.root_mc,
            "iterations": self.iterations, "labelled_prefixes": len(self.states) - 1,
            "localised_solutions": len(self.localisations),
            **dataclasses.asdict(self.cost), "wall_seconds": self.wall_seconds}


class Tree:
  """States keyed by prefix text: identical prefixes share one state (one set of rollouts).
  Every time a search reaches a prefix as a point to label (a binary-search probe, a complete
  solution, a prefix of an annotated solution) `reach` counts it on the state, whether the
  state is new or shared, so records keep the multiplicity that sharing by text removes."""

  def __init__(self, question: str, gold: str, is_correct: Callable[[str, str], bool],
               splitter: Callable[[str], list]):
    self.question, self.gold = question, gold
    self.is_correct, self.splitter = is_correct, splitter
    self.states: list[State] = []
    self.by_text: dict[str, State] = {}
    self.cost = Cost()
    self.root_tokens = 0
    self.root = self.new((), None)

  def new(self, pieces: tuple, parent: Optional[int]) -> State:
    """A new state of `pieces` under `parent`, indexed by its text."""
    s = State(id=len(self.states), pieces=tuple(pieces), parent=parent)
    self.states.append(s)
    self.by_text[s.text] = s
    return s

  def reach(self, pieces: tuple, parent: Optional[int]) -> tuple[State, bool]:
    """(the state for `pieces`, whether it is new); counts one occurrence either way."""
    text = "".join(pieces)
    fresh = text not in self.by_text
    state = self.new(pieces, parent) if fresh else self.by_text[text]
    state.occurrences += 1
    return state, fresh

  def estimate(self, state: State, comps: Sequence[Sample]) -> list[tuple]:
    """Sets MC from completions; returns [(pieces of the completion, tokens, correct)]."""
    state.rollouts = state.correct = 0
    if state.id == 0:
      self.root_tokens = sum(c.num_tokens for c in comps)
    return self.extend(state, comps)

  def extend(self, state: State, comps: Sequence[Sample]) -> list[tuple]:
    """Adds graded completions to the state's rollouts (MC over all of them)."""
    self.cost.add(comps)
    graded = []
    for c in comps:
      if not getattr(c, "finished", True):   # cut by the token limit: no answer to grade
        continue
      ok = bool(self.is_correct(state.text + c.text, self.gold))
      graded.append((tuple(self.splitter(c.text)), c.num_tokens, ok))
    state.rollouts += len(graded)
    state.correct += sum(g[2] for g in graded)
    state.mc = state.correct / max(1, state.rollouts)
    return graded

  def probe(self, pieces: tuple, parent: int, k: int) -> Generator[Requests, list, tuple]:
    """The state for `pieces` -> (state, graded rollouts or None when it already existed)."""
    state, fresh = self.reach(pieces, parent)
    if not fresh:
      return state, None
    (comps,) = yield [(state.text, k)]
    return state, self.estimate(state, comps)

  def terminal(self, pieces: tuple, parent: int) -> State:
    """A complete solution as a state: MC is its own correctness, no rollouts."""
    s, fresh = self.reach(pieces, parent)
    if fresh:
      s.terminal = True
      s.mc = float(bool(self.is_correct(s.text, self.gold)))
    return s

  def record_complete(self, graded) -> None:
    """Every distinct complete rollout from the root as a terminal state (MC = correctness)."""
    for pieces, _, _ in graded:
      if pieces:
        self.terminal(pieces, self.root.id)

  def result(self, method: str, **kw) -> SearchResult:
    """The search's result with the tree's states and cost."""
    return SearchResult(method=method, states=self.states, cost=self.cost,
                        root_mc=self.root.mc, root_tokens=self.root_tokens, **kw)


def drive(searches: dict, policy, *, seed, on_done=None) -> dict:
  """Runs {key: (question, search generator)} to completion, batching their requests.

  Each round sends every pending request (grouped by n) to `policy.rollout`, each request with
  its own seed: call_seed(the search's seed, how many requests that search has issued), where
  the search's seed is `seed[key]` (a dict: `collect` gives each question its own) or `seed`
  (an int, the same for every search). A search's samples therefore do not depend on which
  other searches share its rounds, nor on how they are batched. `on_done(key, result)` is
  called as each search finishes (so a caller can write its records right away). Returns
  ({key: SearchResult}, number of policy.rollout calls).
  """
  if isinstance(seed, dict):
    missing = [k for k in searches if k not in seed]
    if missing:
      raise KeyError(f"drive: no seed for searches {missing[:5]}")
    search_seed = dict(seed)
  else:
    search_seed = {key: int(seed) for key in searches}
  issued = {key: 0 for key in searches}
  results, pending, started = {}, {}, {}

  def advance(key, gen, value):
    try:
      reqs = gen.send(value)
    except StopIteration as stop:
      res = stop.value
      res.wall_seconds = time.perf_counter() - started[key]
      results[key] = res
      if on_done is not None:
        on_done(key, res)
      return
    if not reqs:
      raise RuntimeError(f"search {key!r} yielded no requests")
    pending[key] = reqs

  for key, (_, gen) in searches.items():
    started[key] = time.perf_counter()
    advance(key, gen, None)
  calls = 0
  while pending:
    round_reqs, pending = pending, {}
    by_n: dict[int, list] = {}
    for key, reqs in round_reqs.items():
      for j, (prefix, n) in enumerate(reqs):
        rs = call_seed(search_seed[key], issued[key])
        issued[key] += 1
        by_n.setdefault(n, []).append((key, j, searches[key][0], prefix, rs))
    answers = {key: [None] * len(reqs) for key, reqs in round_reqs.items()}
    for n, items in sorted(by_n.items()):
      out = policy.rollout([(q, p) for _, _, q, p, _ in items], n,
                           seed=[rs for *_, rs in items])
      calls += 1
      check_shape(out, len(items), n, type(policy).__name__)
      for (key, j, _, _, _), comps in zip(items, out):
        answers[key][j] = comps
    for key in round_reqs:
      advance(key, searches[key][1], answers[key])
  return results, calls
