"""Math-Shepherd (Wang et al. 2023) per-step estimation and the sequential scan, as baselines
with OmegaPRM's output format and cost stats.

Both start like OmegaPRM (`root_rollouts` rollouts from the question, the same root filter)
and then annotate root rollouts one at a time, incorrect ones first, until `max_solutions`
solutions or `rollout_budget` rollouts (0 = no budget) are used:
- "per_step": k rollouts from every prefix of the solution (steps 1..M-1; the complete
  solution is labelled by its own correctness): hard label 1[MC > 0], soft label MC. The
  predicted first error is the first prefix with MC = 0.
- "sequential": the same estimates in order, stopping at the first MC = 0 (fewer rollouts,
  the same first-error prediction, no labels after it).
Identical prefixes share a state, as in OmegaPRM. `decision` (as OmegaPRMConfig's, see
`decision.py`) decides which prefix is the predicted first error (and where the sequential
scan stops); the default is the MC = 0 rule above. Labels stay MC.
"""

from __future__ import annotations

import dataclasses

from prm_jax import steps as steps_lib
from prm_jax.omegaprm import decision as decision_lib
from prm_jax.omegaprm.tree import Localisation, Tree, drive


@dataclasses.dataclass(frozen=True)
class ShepherdConfig:
  mode: str = "per_step"          # or "sequential"
  k: int = 8
  root_rollouts: int = 32
  filter_root: bool = True
  max_solutions: int = 32         # root rollouts annotated per question
  rollout_budget: int = 0         # stop annotating new solutions past this (0: none)
  annotate: str = "incorrect"     # or "all" (correct solutions get labels too)
  record_root_rollouts: bool = False   # as OmegaPRMConfig.record_root_rollouts
  decision: str = "mc>0"          # as OmegaPRMConfig.decision (first error, scan stop)
  min_correct: int = 2
  recover_ratio: float = 0.1

  def __post_init__(self):
    decision_lib.check_rule("ShepherdConfig", self.decision, self.min_correct,
                            self.recover_ratio)
    if self.mode not in ("per_step", "sequential"):
      raise ValueError(f"ShepherdConfig.mode: 'per_step' or 'sequential', got {self.mode!r}")
    if self.annotate not in ("incorrect", "all"):
      raise ValueError(f"ShepherdConfig.annotate: 'incorrect' or 'all', got {self.annotate!r}")
    for f in ("k", "root_rollouts", "max_solutions"):
      if getattr(self, f) < 1:
        raise ValueError(f"ShepherdConfig.{f} must be >= 1, got {getattr(self, f)}")


def shepherd_search(question: str, gold: str, is_correct, cfg: ShepherdConfig = ShepherdConfig(),
                    splitter=None):
  """Math-Shepherd labelling as a search generator: rollouts from every step prefix
  (per_step) or until the first failing prefix (sequential)."""
  tree = Tree(question, gold, is_correct, splitter or steps_lib.by_delimiter())
  method = "math_shepherd" if cfg.mode == "per_step" else "sequential"
  (comps,) = yield [("", cfg.root_rollouts)]
  graded = tree.estimate(tree.root, comps)
  if cfg.filter_root and tree.root.mc in (0.0, 1.0):
    return tree.result(method, localisations=[], filtered=True)
  if cfg.record_root_rollouts:
    tree.record_complete(graded)
  chosen = [g for g in graded if not g[2] and g[0]]
  if cfg.annotate == "all":
    chosen += [g for g in graded if g[2] and g[0]]
  def judged(states):
    """[right?] per state in order, each judged against the last state judged right."""
    out, anchor = [], tree.root
    for s in states:
      out.append(decision_lib.judge(cfg, s, anchor))
      anchor = s if out[-1] else anchor
    return out

  locs = []
  for pieces, _, ok in chosen[:cfg.max_solutions]:
    if cfg.rollout_budget and tree.cost.rollouts >= cfg.rollout_budget:
      break
    before = tree.cost.rollouts
    prefixes = [pieces[:t] for t in range(1, len(pieces))]
    states = []
    if cfg.mode == "per_step":
      reached = [tree.reach(p, None) for p in prefixes]
      fresh = [s for s, is_new in reached if is_new]
      if fresh:
        answers = yield [(s.text, cfg.k) for s in fresh]
        for s, c in zip(fresh, answers):
          tree.estimate(s, c)
      states = [s for s, _ in reached]
    else:
      anchor = tree.root
      for p in prefixes:
        s, _ = yield from tree.probe(p, states[-1].id if states else 0, cfg.k)
        states.append(s)
        if not decision_lib.judge(cfg, s, anchor):
          break
        anchor = s
    prev = 0
    for s in states:           # parents follow the solution's own order
      if s.parent is None:
        s.parent = prev
      prev = s.id
    verdicts = judged(states)
    if cfg.mode == "per_step" or all(verdicts):
      states.append(tree.terminal(pieces, prev))
      verdicts.append(states[-1].mc > 0)           # a complete solution: its own correctness
    first = next((i for i, r in enumerate(verdicts) if not r), None)
    if not ok:
      locs.append(Localisation(state_id=0, solution=pieces, predicted=first,
                               cost_rollouts=tree.cost.rollouts - before))
  return tree.result(method, localisations=locs, iterations=len(locs))


def run_math_shepherd(question: str, gold_answer: str, policy, is_correct,
                      config: ShepherdConfig = ShepherdConfig(), *, seed: int, splitter=None):
  """Math-Shepherd (or the sequential scan) on one question -> (records, cost stats)."""
  results, calls = drive({0: (question, shepherd_search(question, gold_answer, is_correct,
                                                        config, splitter))}, policy, seed=seed)
  res = results[0]
  return res.records(question, gold=gold_answer), dict(res.summary(), policy_batches=calls)
