"""Label sources for PRM training (`config.prm.labels`): which target a record's prefix gets.

- "mc": the record's MC estimate, as collected (the objective decides soft / hard use).
- "hard@TAU": 1[MC > TAU] as a 0 / 1 target ("hard@0" is the paper's hard label).
- "exact": the judge's verdict (1: no wrong step so far, 0: a wrong step) replaces MC;
  records the judge cannot decide are dropped.
- "consensus": consensus filtering (Zhang et al. 2025, "The Lessons of Developing Process
  Reward Models in Mathematical Reasoning"): a record is kept only where the MC label
  1[MC > 0] agrees with the judge; kept records keep their MC. Agreement is checked per
  labelled prefix (the paper compares first-error positions of whole solutions; on a search
  tree a prefix's labels fix the first error of every solution through it).

The judge (`config.prm.judge`) is a name in `prm_jax.envs.judges.EXACT` ("arithmetic", the
environment's exact checker), or "llm": an LLM critic through the policy's backend interface
(`prm_jax.envs.llm_judge.LLMJudge`, ProcessBench's critic protocol; `config.prm.judge_llm`
names the OpenAI-compatible server, model and samples), the paper's judge for real data.
`apply` also takes any object with `verdicts(records) -> [1 | 0 | None]` as the judge.
"""

from __future__ import annotations

from typing import Sequence

from prm_jax.envs.judges import EXACT


def parse(source: str) -> tuple[str, float]:
  """"mc" | "hard@TAU" | "exact" | "consensus" -> (kind, tau)."""
  if source in ("mc", "exact", "consensus"):
    return source, 0.0
  if source.startswith("hard@"):
    try:
      tau = float(source[5:])
    except ValueError:
      tau = -1.0
    if 0.0 <= tau < 1.0:
      return "hard", tau
  raise ValueError(f"prm.labels {source!r}: expected mc, hard@TAU (0 <= TAU < 1), exact or "
                   "consensus")


def apply(records: Sequence[dict], source: str, judge="") -> tuple[list[dict], dict]:
  """(records with the source's targets in `mc`, counts: kept, dropped, labels changed).
  `judge`: a name in EXACT, or an object with `verdicts(records)` (e.g. an LLMJudge)."""
  kind, tau = parse(source)
  info = {"labels": source, "records_in": len(records)}
  if kind == "mc":
    return list(records), dict(info, kept=len(records))
  if kind == "hard":
    out = [dict(r, mc=float(float(r["mc"]) > tau)) for r in records]
    changed = sum(o["mc"] != float(r["mc"]) for o, r in zip(out, records))
    return out, dict(info, kept=len(out), changed=changed)
  if hasattr(judge, "verdicts"):
    verdicts, name = judge.verdicts(records), type(judge).__name__
  elif judge in EXACT:
    verdicts, name = [EXACT[judge](r) for r in records], judge
  else:
    raise ValueError(f"prm.labels={source!r} needs prm.judge, one of {sorted(EXACT) + ['llm']}"
                     f"; got {judge!r}")
  out, unjudged, disagree, changed = [], 0, 0, 0
  for r, v in zip(records, verdicts):
    if v is None:
      unjudged += 1
      continue
    mc_label = int(float(r["mc"]) > 0)
    if kind == "exact":
      changed += mc_label != v
      out.append(dict(r, mc=float(v)))
    elif mc_label == v:
      out.append(r)
    else:
      disagree += 1
  return out, dict(info, judge=name, kept=len(out), dropped_unjudged=unjudged,
                   dropped_disagree=disagree, **({"changed": changed} if kind == "exact"
                                                 else {}))
