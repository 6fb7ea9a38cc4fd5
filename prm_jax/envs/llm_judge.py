"""An LLM judge of labelled prefixes, through the policy's `Backend` interface (any
text-completion backend: the in-process sampler, an OpenAI-compatible server): the judge of
consensus filtering on real data, where no exact checker exists (Zhang et al. 2025, "The
Lessons of Developing Process Reward Models in Mathematical Reasoning", judge the MC labels
with an LLM critic and keep the agreeing ones).

Protocol: ProcessBench's critic protocol (QwenLM/ProcessBench `code/run_eval.py`): the steps
are shown as paragraphs tagged `<paragraph_i>` ... `</paragraph_i>` indexed from 0, blank line
between them; the model answers the index of the earliest wrong paragraph, -1 when there is
none, in `\\boxed{}`; the answer is the last `\\boxed{...}` of the completion. With `samples`
> 1 the verdict is the most common parsable answer (ties: the smallest index); completions
without a parsable integer are ignored, and a prefix with none is unjudged.

A record's verdict: 1 if the judge finds no error among its steps (-1), 0 if it names a step
of the prefix, None if unjudged or the index is out of range.
"""

from __future__ import annotations

import collections
import re
from typing import Optional, Sequence

from mode_jax.serve.api import Sampling

JUDGE_TEMPLATE = (
    "Below are a math problem and a solution to it, split into paragraphs that are tagged and "
    "numbered from 0.\n\n[Math Problem]\n\n{problem}\n\n[Solution]\n\n{tagged_response}\n\n"
    "Check the solution one paragraph at a time. If a paragraph contains an error, give the "
    "index of the earliest such paragraph; if every paragraph is correct, give -1.\n\n"
    "Write the final answer (the index) inside \\boxed{{}}.\n")

_BOXED = re.compile(r"\\boxed\{([^}]*)\}")


def tagged(steps: Sequence[str]) -> str:
  """Steps wrapped in <paragraph_i> tags (ProcessBench's critic format)."""
  return "\n\n".join(f"<paragraph_{i}>\n{s.strip()}\n</paragraph_{i}>"
                     for i, s in enumerate(steps))


def judge_prompt(problem: str, steps: Sequence[str], template: str = JUDGE_TEMPLATE) -> str:
  """The critic prompt of a problem and its steps."""
  return template.format(problem=problem, tagged_response=tagged(steps))


def parse_index(text: str) -> Optional[int]:
  """The integer in the completion's last \\boxed{...}; None when there is none."""
  found = _BOXED.findall(text)
  if not found:
    return None
  try:
    return int(found[-1].strip())
  except ValueError:
    return None


def vote(indices: Sequence[Optional[int]]) -> Optional[int]:
  """The most frequent index among the parsed verdicts (ties: the smallest); None if none."""
  counts = collections.Counter(i for i in indices if i is not None)
  if not counts:
    return None
  best = max(counts.values())
  return min(i for i, c in counts.items() if c == best)


class LLMJudge:
  """`verdicts(records)` -> 1 / 0 / None per record (module docstring), one backend call for
  all distinct (question, steps) prefixes."""

  def __init__(self, backend, *, samples: int = 1, seed: int = 0,
               template: str = JUDGE_TEMPLATE, question_field: str = "question",
               steps_field: str = "steps", sampling: Optional[Sampling] = None):
    if samples < 1:
      raise ValueError(f"LLMJudge: samples must be >= 1, got {samples}")
    for key in ("{problem}", "{tagged_response}"):
      if key not in template:
        raise ValueError(f"LLMJudge: template must contain {key}")
    self.backend, self.samples, self.seed, self.template = backend, samples, seed, template
    # greedy for one verdict, sampled for a vote
    self.sampling = sampling or Sampling(max_tokens=2048,
                                         temperature=0.0 if samples == 1 else 1.0)
    self.question_field, self.steps_field = question_field, steps_field
    self.calls = 0

  def first_errors(self, items: Sequence[tuple[str, Sequence[str]]]) -> list[Optional[int]]:
    """The first wrong step (-1: none) of each (question, steps) item by majority over
    `samples` judge completions; None where no verdict parsed."""
    keys = list(dict.fromkeys((q, tuple(st)) for q, st in items))
    if not keys:
      return []
    comps = self.backend.complete([judge_prompt(q, st, self.template) for q, st in keys],
                                  self.samples, seeds=self.seed, **self.sampling.kwargs())
    self.calls += 1
    found = {k: vote([parse_index(c.text) for c in cs]) for k, cs in zip(keys, comps)}
    return [found[(q, tuple(st))] for q, st in items]

  def verdicts(self, records: Sequence[dict]) -> list[Optional[int]]:
    """Exact-label verdicts of records (1: prefix right, 0: wrong, None: unknown) from the
    judge's first errors."""
    items = [(str(r.get(self.question_field, "")), list(r[self.steps_field])) for r in records]
    out = []
    for (_, steps), fe in zip(items, self.first_errors(items)):
      if fe is None or fe < -1 or fe >= len(steps):
        out.append(None)
      else:
        out.append(int(fe == -1))
    return out
