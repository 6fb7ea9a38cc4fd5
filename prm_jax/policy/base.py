"""The policy extension point: n sampled continuations of (question, solution prefix).

    class Policy(Protocol):
      def rollout(self, requests: Sequence[tuple[str, str]], n: int, *,
                  seed: int | Sequence[int]) -> list[list[Completion]]

A request is (question, solution prefix); the answer holds, per request, `n` continuations of
the prefix to the end of the solution. `seed` is one int for the call (request i then uses
`call_seed(seed, i)`: its samples depend on its position in the batch) or one seed per request
(`omegaprm.tree.drive` gives each request a seed from its own search's seed and the search's
request count, so a question's records do not depend on which questions share its batches). The policy owns its prompt template, sampling settings
and batching. `TemplatePolicy` turns any text-completion backend (the in-process JAX sampler,
an OpenAI-compatible server) into a Policy.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Protocol, Sequence, Union

import numpy as np


@dataclasses.dataclass(frozen=True)
class Completion:
  text: str          # the continuation only (not the prompt or prefix)
  num_tokens: int    # generated tokens
  finished: bool = True   # False: cut by the token limit (finish_reason "length"), so the
                          # solution is unfinished; the search does not grade it as wrong
  # sum of the sampled tokens' log-probabilities when the backend reports them (the in-process
  # sampler does); not part of equality (it varies in the last bits with the batch shape)
  logprob: Optional[float] = dataclasses.field(default=None, compare=False)


Seed = Union[int, Sequence[int]]   # one per call, or one per request / prompt


class Policy(Protocol):
  def rollout(self, requests: Sequence[tuple[str, str]], n: int, *,
              seed: Seed) -> list[list[Completion]]:
    """Completions of each (question, prefix) request, `n` each, seeded per request."""
    ...


class Backend(Protocol):
  """Text completion: per prompt, `n` samples (the OpenAI completions API shape); `seed` as
  for `Policy.rollout`, per prompt."""

  def complete(self, prompts: Sequence[str], n: int, *, seed: Seed) -> list[list[Completion]]:
    """`n` completions of each prompt, seeded per prompt."""
    ...


DEFAULT_TEMPLATE = "Question: {question}\nAnswer:\n"


class TemplatePolicy:
  """prompt = template.format(question=question) + prefix, completed by `backend`."""

  def __init__(self, backend: Backend, template: str = DEFAULT_TEMPLATE):
    if "{question}" not in template:
      raise ValueError(f"policy template must contain '{{question}}', got {template!r}")
    self.backend, self.template = backend, template

  def prompt(self, question: str, prefix: str) -> str:
    """The question in the template, followed by the prefix."""
    return self.template.format(question=question) + prefix

  def rollout(self, requests, n, *, seed):
    """The backend's completions of the templated prompts (see `Policy.rollout`)."""
    if n < 1:
      raise ValueError(f"rollout n must be >= 1, got {n}")
    if not requests:
      return []
    out = self.backend.complete([self.prompt(q, p) for q, p in requests], n, seed=seed)
    check_shape(out, len(requests), n, type(self.backend).__name__)
    return out


def template_stops(template: str) -> tuple:
  """Stop strings implied by a prompt template: a policy that writes past its answer starts
  the next example with the template's lead-in ("Question:" -> "\nQuestion:"), so generation
  stops there. () when the template starts with the question itself."""
  lead = template.split("{question}", 1)[0].strip()
  return ("\n" + lead,) if lead else ()


def call_seed(seed: int, index: int) -> int:
  """The seed of the `index`-th policy call (or prompt) of a run seeded with `seed`."""
  return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def request_seeds(seed: Seed, count: int) -> list[int]:
  """One seed per request of a call: `call_seed(seed, i)` for an int `seed` (position-based),
  or the given per-request seeds (checked to number `count`)."""
  if isinstance(seed, (int, np.integer)):
    return [call_seed(int(seed), i) for i in range(count)]
  seeds = [int(s) for s in seed]
  if len(seeds) != count:
    raise ValueError(f"{len(seeds)} per-request seeds for {count} requests")
  return seeds


def check_shape(out, num_requests: int, n: int, who: str) -> None:
  """A ValueError naming `who` unless `out` has `n` completions for each of the requests."""
  if len(out) != num_requests or any(len(c) != n for c in out):
    raise ValueError(f"{who} returned {[len(c) for c in out]} completions for "
                     f"{num_requests} requests x n={n}")
