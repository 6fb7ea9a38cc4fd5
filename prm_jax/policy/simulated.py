"""A simulated policy for the arithmetic env whose label noise has a closed form.

From a prefix with no wrong step, each remaining operation step is wrong with probability
`p_error` (the written result is off by a non-zero amount); once wrong, later steps compute
correctly from the wrong value and never land on the true value again. From a prefix that
already has a wrong step, a rollout "recovers" with probability `p_recover`: it continues from
the true running value (as if the model silently fixed the mistake), then makes errors as
above. So, with r operation steps left after the prefix:

    v   = P(correct answer | correct prefix) = (1 - p_error)^r
    rho = P(correct answer | wrong prefix)   = p_recover * (1 - p_error)^r

and with k rollouts and the "MC > 0" rule a correct prefix is labelled wrong with probability
(1 - v)^k (false negative) and a wrong prefix labelled right with 1 - (1 - rho)^k (false
positive), the formulas of Qwen's "Lessons of developing PRMs". Every request is sampled from
its own generator seeded by (seed, question, prefix), so results do not depend on batching.
Tokens are counted as UTF-8 bytes (the byte vocabulary of the tiny models). `vary_format` writes
each step in one of a few spacing variants the checker accepts, so that, as with natural-language
solutions, two rollouts rarely share a correct prefix word for word (with one fixed format every
correct prefix of a question is the same text, and OmegaPRM's and the scans' state sharing make
estimates unrealistically cheap).
"""

from __future__ import annotations

import random
from typing import Iterable, Sequence

from prm_jax.envs import arithmetic
from mode_jax.serve.api import Sample, request_seeds


_FORMATS = ("{a} {op} {b} = {c}", "{a}{op}{b}={c}", "{a} {op} {b} = {c}.", "{a} {op} {b}= {c}")


class SimulatedPolicy:

  def __init__(self, problems: Iterable[arithmetic.Problem], p_error: float = 0.1,
               p_recover: float = 0.0, vary_format: bool = False):
    for name, p in (("p_error", p_error), ("p_recover", p_recover)):
      if not 0.0 <= p <= 1.0:
        raise ValueError(f"SimulatedPolicy.{name} must be in [0, 1], got {p}")
    self.problems = {p.question: p for p in problems}
    self.p_error, self.p_recover, self.vary_format = p_error, p_recover, vary_format

  def _problem(self, question: str) -> arithmetic.Problem:
    try:
      return self.problems[question]
    except KeyError:
      raise KeyError(f"SimulatedPolicy has no problem with question {question[:80]!r}") from None

  def value(self, problem: arithmetic.Problem, steps_done: int, wrong: bool) -> float:
    """Closed-form P(correct final answer) of a rollout from a prefix of `steps_done` steps."""
    if steps_done > len(problem.ops):      # complete solution: its own answer decides
      return 0.0 if wrong else 1.0
    v = (1.0 - self.p_error) ** (len(problem.ops) - steps_done)
    return self.p_recover * v if wrong else v

  def continuation(self, problem: arithmetic.Problem, prefix: str, rng: random.Random) -> str:
    """A continuation of `prefix` (at a step boundary) that slips on each step with the policy's
    error rates."""
    if prefix and not prefix.endswith("\n"):
      raise ValueError("SimulatedPolicy continues prefixes at step boundaries (a prefix must "
                       f"be empty or end with a newline), got ...{prefix[-40:]!r}")
    lines = arithmetic.split_lines(prefix)
    t, n_ops, vals = len(lines), len(problem.ops), problem.values
    if t > n_ops:
      return ""
    wrong = arithmetic.check(problem, prefix).first_error is not None
    w = vals[t]
    if wrong:
      parsed = [arithmetic.parse_step(ln) for ln in lines]
      written = [p[3] for p in parsed if p is not None]
      w = written[-1] if written and written[-1] != vals[t] else vals[t] + 1
      if rng.random() < self.p_recover:
        w, wrong = vals[t], False
    out = []
    for i in range(t, n_ops):
      op, b = problem.ops[i]
      if not wrong:
        res = vals[i + 1]
        if rng.random() < self.p_error:
          mag = max(1, abs(res) // 10)
          res += rng.choice((-1, 1)) * rng.randint(1, mag)
          wrong = True
      else:
        res = arithmetic.apply(w, op, b)
        if res == vals[i + 1]:
          res += 1
      fmt = rng.choice(_FORMATS) if self.vary_format else _FORMATS[0]
      out.append(fmt.format(a=w, op=op, b=b, c=res))
      w = res
    out.append(f"The answer is {w}" + (rng.choice((".", "")) if self.vary_format else "."))
    return "\n".join(out)

  def rollout(self, requests: Sequence[tuple[str, str]], n: int, *,
              seed) -> list[list[Sample]]:
    """`n` continuations of each (question, prefix) request (see `Policy.rollout`)."""
    # An int seed serves every request (with the question and prefix: batch-invariant as it
    # was); per-request seeds (from `drive`) serve their own request.
    seeds = ([seed] * len(requests) if isinstance(seed, int)
             else request_seeds(seed, len(requests)))
    result = []
    for (question, prefix), s in zip(requests, seeds):
      problem = self._problem(question)
      rng = random.Random(f"{s}|{question}|{prefix}")
      texts = [self.continuation(problem, prefix, rng) for _ in range(n)]
      result.append([Sample(t, len(t.encode())) for t in texts])
    return result


class SimulatedBackend:
  """The simulator behind a text-completion interface (`mode_jax.serve.TextModel`): prompts are
  template(question) + prefix, as `TemplatePolicy` and the pipeline's sampling build them. For
  tests and dry runs of code written against backends (e.g. `prm_jax.pipeline`)."""

  def __init__(self, policy: SimulatedPolicy, template: str = "Question: {question}\nAnswer:\n"):
    head, _, tail = template.partition("{question}")
    if not tail:
      raise ValueError(f"template must contain '{{question}}' followed by text: {template!r}")
    self.policy, self.head, self.tail = policy, head, tail

  def complete(self, prompts, n=1, *, seeds=None, **unused):
    """The simulated policy's completions of templated prompts (`mode_jax.serve.TextModel`
    shape; sampling settings do not apply to the simulator)."""
    del unused
    reqs = []
    for p in prompts:
      if not p.startswith(self.head) or self.tail not in p:
        raise ValueError(f"prompt does not follow the template: {p[:80]!r}")
      q, _, prefix = p[len(self.head):].partition(self.tail)
      reqs.append((q, prefix))
    return self.policy.rollout(reqs, n, seed=0 if seeds is None else seeds)
