"""OmegaPRM (Luo et al. 2024, arXiv 2406.06592): divide-and-conquer MCTS for the first error.

Per question: `root_rollouts` rollouts from the question alone; questions with 0 or all of
them correct are dropped (the root filter). The pool holds (state, incorrect rollout) pairs
of states with 0 < MC < 1. Each iteration pops the pair maximising

    Q(s, r) = alpha^(1 - MC(s)) * beta^(len(r) / L)          len(r): tokens of r
    U(s)    = c_puct * sqrt(sum_i N(s_i)) / (1 + N(s))

(removed from the pool for good), increments N(s), and binary-searches the rollout's pieces
for its first error: with lo = 0 pieces known good and hi = M known bad (the whole rollout is
incorrect), probe mid = (lo + hi) // 2 with k rollouts from s + pieces[:mid]; MC > 0 -> lo =
mid (the error is to the right; MC = 1 too), MC = 0 -> hi = mid. Piece hi is the first error.
"MC > 0" is the paper's decision; `decision` selects another (`decision.py`: c of k, a
likelihood-ratio test) and `boundary_rollouts` re-checks the final boundary (not in the paper).
Every probed prefix becomes a state (shared by text: an existing prefix is never rolled out
again); the incorrect rollouts of probes with 0 < MC < 1 join the pool (identical rollouts of
one state once). The first-error
prefix is a state with MC = 0 (probed, or the complete rollout itself when hi = M). The search
stops after `search_limit` iterations or when the pool is empty.

`record_root_rollouts` (not in the paper, off by default) also records every distinct root
rollout as a complete-solution state labelled by its correctness. The tree's only other
complete solutions are the wrong rollouts whose last step is their first error, so without
these a PRM sees final steps labelled wrong only.
"""

from __future__ import annotations

import dataclasses
import math

from prm_jax import steps as steps_lib
from prm_jax.omegaprm import decision
from prm_jax.omegaprm.tree import Localisation, Tree, drive


@dataclasses.dataclass(frozen=True)
class OmegaPRMConfig:
  """Defaults are the paper's; search_limit counts iterations (binary searches) per question."""
  alpha: float = 0.5
  beta: float = 0.9
  length_scale: float = 500.0     # L
  c_puct: float = 0.125
  k: int = 8
  search_limit: int = 100
  root_rollouts: int = 32
  filter_root: bool = True        # drop questions with 0/root_rollouts or all correct
  record_root_rollouts: bool = False   # also label the graded root rollouts (complete)
  decision: str = "mc>0"          # binary-search decision: mc>0 (paper) | c_of_k | lrt
  min_correct: int = 2            # c_of_k: right iff >= this many of k rollouts correct
  recover_ratio: float = 0.1      # lrt: P(correct | wrong prefix) / P(correct | right prefix)
  boundary_rollouts: int = 0      # re-check the converged boundary with this many (0: off)

  def __post_init__(self):
    decision.check_rule("OmegaPRMConfig", self.decision, self.min_correct, self.recover_ratio)
    if self.boundary_rollouts < 0:
      raise ValueError(f"OmegaPRMConfig.boundary_rollouts must be >= 0, got "
                       f"{self.boundary_rollouts}")
    for f in ("alpha", "beta"):
      if not 0.0 < getattr(self, f) <= 1.0:
        raise ValueError(f"OmegaPRMConfig.{f} must be in (0, 1], got {getattr(self, f)}")
    if self.length_scale <= 0 or self.c_puct < 0:
      raise ValueError("OmegaPRMConfig.length_scale must be > 0 and c_puct >= 0")
    for f in ("k", "search_limit", "root_rollouts"):
      if getattr(self, f) < 1:
        raise ValueError(f"OmegaPRMConfig.{f} must be >= 1, got {getattr(self, f)}")


def q_value(mc: float, rollout_tokens: int, cfg: OmegaPRMConfig) -> float:
  """OmegaPRM's Q(s, r) = alpha^(1 - MC(s)) * beta^(len(r) / L)."""
  return cfg.alpha ** (1.0 - mc) * cfg.beta ** (rollout_tokens / cfg.length_scale)


def u_value(visits: int, total_visits: int, cfg: OmegaPRMConfig) -> float:
  """OmegaPRM's U(s) = c_puct * sqrt(sum of visits) / (1 + N(s))."""
  return cfg.c_puct * math.sqrt(total_visits) / (1.0 + visits)


@dataclasses.dataclass
class _Candidate:
  state: object
  pieces: tuple
  tokens: int


def binary_search(tree: Tree, state, pieces: tuple, k: int, cfg: OmegaPRMConfig = None):
  """Generator: locates the first wrong piece of the incorrect rollout `pieces` from `state`.
  Returns (index of the first wrong piece within `pieces`, new states with graded rollouts)."""
  cfg = cfg or OmegaPRMConfig(k=k)
  lo, hi, good = 0, len(pieces), state
  added, at, anchor_of, checked = [], {0: state}, {}, set()
  while True:
    while hi - lo > 1:
      mid = (lo + hi) // 2
      if mid not in at:
        probed, graded = yield from tree.probe(state.pieces + pieces[:mid], good.id, k)
        if graded is not None:
          added.append((probed, graded))
        at[mid], anchor_of[mid] = probed, good
      if decision.judge(cfg, at[mid], anchor_of[mid]):
        lo, good = mid, at[mid]
      else:
        hi = mid
    recheck = [i for i in (lo, hi) if 0 < i < len(pieces) and i not in checked
               and not at[i].terminal] if cfg.boundary_rollouts else []
    if not recheck:
      break
    checked.update(recheck)
    answers = yield [(at[i].text, cfg.boundary_rollouts) for i in recheck]
    for i, comps in zip(recheck, answers):
      tree.extend(at[i], comps)
    if hi in recheck and decision.judge(cfg, at[hi], anchor_of[hi]):
      lo, good, hi = hi, at[hi], len(pieces)          # the error is further on
    elif lo in recheck and not decision.judge(cfg, at[lo], anchor_of[lo]):
      hi = lo                                          # the error is at or before lo
      right = [i for i in at if 0 < i < hi and decision.judge(cfg, at[i], anchor_of[i])]
      lo = max(right, default=0)
      good = at[lo]
  if hi == len(pieces):
    tree.terminal(state.pieces + pieces, good.id)
  return hi - 1, added


def omegaprm_search(question: str, gold: str, is_correct, cfg: OmegaPRMConfig = OmegaPRMConfig(),
                    splitter=None):
  """The search as a generator (see `tree.drive`); returns a SearchResult."""
  tree = Tree(question, gold, is_correct, splitter or steps_lib.by_delimiter())
  pool: list[_Candidate] = []
  seen: set = set()      # (state, rollout text): an identical rollout is searched once

  def add(state, graded):
    if 0.0 < state.mc < 1.0:
      for p, t, ok in graded:
        if not ok and p and (state.id, p) not in seen:
          seen.add((state.id, p))
          pool.append(_Candidate(state, p, t))

  (comps,) = yield [("", cfg.root_rollouts)]
  graded = tree.estimate(tree.root, comps)
  if cfg.filter_root and tree.root.mc in (0.0, 1.0):
    return tree.result("omegaprm", localisations=[], filtered=True)
  add(tree.root, graded)
  if cfg.record_root_rollouts:
    tree.record_complete(graded)
  locs, iterations = [], 0
  while pool and iterations < cfg.search_limit:
    # sum_i N(s_i) = selections so far (each selection visits exactly one state)
    best = max(range(len(pool)), key=lambda i: (
        q_value(pool[i].state.mc, pool[i].tokens, cfg)
        + u_value(pool[i].state.visits, iterations, cfg)))
    cand = pool.pop(best)
    cand.state.visits += 1
    iterations += 1
    before = tree.cost.rollouts
    wrong, added = yield from binary_search(tree, cand.state, cand.pieces, cfg.k, cfg)
    for st, gr in added:
      add(st, gr)
    locs.append(Localisation(state_id=cand.state.id, solution=cand.state.pieces + cand.pieces,
                             predicted=len(cand.state.pieces) + wrong,
                             cost_rollouts=tree.cost.rollouts - before))
  return tree.result("omegaprm", localisations=locs, iterations=iterations)


def run_omegaprm(question: str, gold_answer: str, policy, is_correct,
                 config: OmegaPRMConfig = OmegaPRMConfig(), *, seed: int, splitter=None):
  """OmegaPRM on one question -> (records, cost stats). Records: one dict per labelled
  prefix (question, steps of the prefix, index of its last step, MC, number of rollouts, ...);
  stats: policy calls, rollouts, generated tokens, wall time and the search's counters."""
  results, calls = drive({0: (question, omegaprm_search(question, gold_answer, is_correct,
                                                        config, splitter))}, policy, seed=seed)
  res = results[0]
  return res.records(question, gold=gold_answer), dict(res.summary(), policy_batches=calls)
