"""PRM-guided step-level beam search, the standard use of a PRM at inference in openr and the
Qwen PRM papers, to set beside best-of-N and PRM-weighted voting at equal generated tokens.

Per question, `beam_width` partial solutions are kept. Each round every live beam gets
`expand` sampled continuations; only the first step of each (up to and including the step
delimiter) becomes a candidate, scored by the PRM on the whole prefix; a candidate without a
delimiter is a complete solution and goes to the finished pool. The `beam_width` best
unfinished candidates (by the aggregated step scores, `verify.aggregate`; identical texts
once) form the next beam. The search stops when the beam is empty, after `max_steps` rounds,
or, for the "product" and "min" aggregations (which never grow with more steps), as soon as
the best finished score is at least the best live one. The answer is the best finished
solution's (if none finished, the best partial one: no answer).

Generated tokens count only the kept first steps (a backend that stops at the delimiter would
generate exactly these): for the byte vocabulary of the tiny policy and the simulated policy's
UTF-8 count this is exact; for a subword backend it is the piece's share of the completion's
tokens by characters, an estimate. All questions of a call share each round's policy request,
and every request is seeded from its question and round, so results do not depend on batching.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

from prm_jax import verify
from mode_jax.serve.api import call_seed


@dataclasses.dataclass(frozen=True)
class BeamConfig:
  beam_width: int = 4
  expand: int = 4              # continuations sampled per live beam per round
  max_steps: int = 24
  aggregate: str = "product"   # verify.AGGREGATIONS
  delimiter: str = "\n"

  def __post_init__(self):
    for f in ("beam_width", "expand", "max_steps"):
      if getattr(self, f) < 1:
        raise ValueError(f"BeamConfig.{f} must be >= 1, got {getattr(self, f)}")
    if self.aggregate not in verify.AGGREGATIONS:
      raise ValueError(f"BeamConfig.aggregate must be one of {verify.AGGREGATIONS}, got "
                       f"{self.aggregate!r}")


@dataclasses.dataclass
class _Beam:
  steps: tuple
  probs: tuple = ()

  @property
  def text(self) -> str:
    return "".join(self.steps)


def first_step(text: str, delimiter: str) -> tuple[str, bool]:
  """(the first step of a continuation, whether it ends the solution)."""
  cut = text.find(delimiter)
  if cut < 0:
    return text, True
  return text[:cut + len(delimiter)], False


def beam_search(policy, scorer, questions: Sequence[str], cfg: BeamConfig = BeamConfig(), *,
                seed: int = 0) -> list[dict]:
  """Per question: {"solution": text of the chosen solution, "finished": bool, "score",
  "tokens": generated tokens, "rounds"}. `policy`: a `Policy` (rollout of (question, prefix));
  `scorer`: anything with `score([(question, steps)]) -> [step probabilities]`."""
  beams = {i: [_Beam(())] for i in range(len(questions))}
  done: dict[int, list] = {i: [] for i in range(len(questions))}
  tokens = [0.0] * len(questions)
  rounds = [0] * len(questions)
  for r in range(cfg.max_steps):
    live = [(i, b) for i, bs in beams.items() for b in bs]
    if not live:
      break
    seeds = [call_seed(call_seed(seed, i), r * cfg.beam_width + j)
             for i, j in _rank_within(live)]
    outs = policy.rollout([(questions[i], b.text) for i, b in live], cfg.expand, seed=seeds)
    cands: dict[int, dict] = {i: {} for i, _ in live}
    for (i, b), comps in zip(live, outs):
      rounds[i] = r + 1
      for c in comps:
        piece, final = first_step(c.text, cfg.delimiter)
        tokens[i] += c.num_tokens * (len(piece) / len(c.text)) if c.text else 0.0
        if final and not getattr(c, "finished", True):
          continue                     # cut by the token limit inside its first step
        if piece:
          cands[i].setdefault(b.text + piece, (b, piece, final))
    flat = [(i, b, piece, final) for i, cs in cands.items() for b, piece, final in cs.values()]
    probs = scorer.score([(questions[i], list(b.steps) + [piece]) for i, b, piece, _ in flat])
    by_q: dict[int, list] = {}
    for (i, b, piece, final), p in zip(flat, probs):
      beam = _Beam(b.steps + (piece,), tuple(float(x) for x in p))
      by_q.setdefault(i, []).append((verify.aggregate(beam.probs, cfg.aggregate), final, beam))
    for i in cands:
      ranked = sorted(by_q.get(i, []), key=lambda t: -t[0])
      done[i] += [(sc, b) for sc, fin, b in ranked if fin]
      live_i = [(sc, b) for sc, fin, b in ranked if not fin][:cfg.beam_width]
      beams[i] = [b for _, b in live_i]
      if (cfg.aggregate in ("product", "min") and done[i] and live_i
          and max(sc for sc, _ in done[i]) >= live_i[0][0]):
        beams[i] = []                  # no live beam can overtake the best finished one
  out = []
  for i in range(len(questions)):
    pool = done[i] or [(verify.aggregate(b.probs, cfg.aggregate), b) for b in beams[i]]
    if pool:
      score, best = max(pool, key=lambda t: t[0])
    else:
      score, best = 0.0, _Beam(())
    out.append({"solution": best.text, "finished": bool(done[i]), "score": float(score),
                "tokens": tokens[i], "rounds": rounds[i]})
  return out


def _rank_within(live):
  """(question, index of the beam within its question) for seeding."""
  seen: dict[int, int] = {}
  out = []
  for i, _ in live:
    out.append((i, seen.get(i, 0)))
    seen[i] = seen.get(i, 0) + 1
  return out
