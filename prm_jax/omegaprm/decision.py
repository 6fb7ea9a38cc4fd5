"""When does a probed prefix count as still right? The decision rule of the searches.

A probe from prefix s draws k rollouts, c of them reach the right answer. The rules:

- "mc>0" (the OmegaPRM paper's, and Math-Shepherd's hard label): right iff c >= 1. One lucky
  rollout from a wrong prefix (a policy that recovers with probability rho per rollout) makes
  it "right": P(false right) = 1 - (1 - rho)^k, 0.57 at rho = 0.1, k = 8.
- "c_of_k": right iff c >= `min_correct` (e.g. 2 of 8); over n != k pooled rollouts (the
  boundary check) the same share: c / n >= min_correct / k.
- "lrt": a likelihood-ratio test between "right" (each rollout succeeds with probability v)
  and "wrong" (probability rho = `recover_ratio` * v), with equal priors:
      c log(v / rho) + (k - c) log((1 - v) / (1 - rho)) >= 0  ->  right.
  v is the MC of the search's anchor (the deepest prefix already judged right: a right
  prefix further on succeeds at least about as often), clipped to [1/(2k), 1 - 1/(2k)].
  `recover_ratio` is the policy's recovery rate relative to its success rate (the simulated
  policy's p_recover exactly; on a real policy an assumption, stated in the config, which the
  label report measures where an exact judge exists: `python -m prm_jax.label_report
  --exact=arithmetic` prints "recover ratio", mean MC of wrong prefixes over right ones).

`boundary_rollouts` (OmegaPRM only; 0 = off): once a binary search has converged on the
boundary (last prefix judged right, first judged wrong), both boundary prefixes get that many
more rollouts, pooled with their first ones, and are judged again; a flipped decision moves the
search to the side it points to. Each prefix is re-checked once, so the search ends.
"""

from __future__ import annotations

import math

RULES = ("mc>0", "c_of_k", "lrt")


def check_rule(owner: str, rule: str, min_correct: int, recover_ratio: float) -> None:
  """Raises a ValueError naming `owner` for an unknown rule or out-of-range parameter."""
  if rule not in RULES:
    raise ValueError(f"{owner}.decision must be one of {RULES}, got {rule!r}")
  if min_correct < 1:
    raise ValueError(f"{owner}.min_correct must be >= 1, got {min_correct}")
  if not 0.0 < recover_ratio < 1.0:
    raise ValueError(f"{owner}.recover_ratio must be in (0, 1), got {recover_ratio}")


def judged_right(rule: str, correct: int, rollouts: int, *, k: int, anchor_mc: float = 0.5,
                 min_correct: int = 2, recover_ratio: float = 0.1) -> bool:
  """Whether a prefix with `correct` of `rollouts` graded rollouts counts as right (`k`: the
  rollouts of one probe)."""
  if rollouts <= 0 or correct <= 0:
    return False
  if rule == "mc>0":
    return True
  if rule == "c_of_k":
    return correct * k >= min_correct * rollouts
  if rule == "lrt":
    eps = 1.0 / (2 * rollouts)
    v = min(max(anchor_mc, eps), 1.0 - eps)
    rho = recover_ratio * v
    llr = (correct * math.log(v / rho)
           + (rollouts - correct) * math.log((1.0 - v) / (1.0 - rho)))
    return llr >= 0.0
  raise ValueError(f"decision rule {rule!r}: expected one of {RULES}")


def judge(cfg, state, anchor) -> bool:
  """The decision of `cfg` (an OmegaPRMConfig / ShepherdConfig: decision, k, min_correct,
  recover_ratio) on a tree state; `anchor`: the deepest state judged right before it. A
  complete solution is judged by its own correctness."""
  if state.terminal:
    return state.mc > 0
  return judged_right(cfg.decision, state.correct, state.rollouts, k=cfg.k,
                      anchor_mc=anchor.mc, min_correct=cfg.min_correct,
                      recover_ratio=cfg.recover_ratio)
