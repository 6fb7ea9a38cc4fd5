"""The policy extension point: n sampled continuations of (question, solution prefix).

    class Policy(Protocol):
      def rollout(self, requests: Sequence[tuple[str, str]], n: int, *,
                  seed: int | Sequence[int]) -> list[list[Sample]]

A request is (question, solution prefix); the answer holds, per request, `n` continuations of
the prefix to the end of the solution (`mode_jax.serve.Sample`: text, token count, finished,
log-prob). `seed` is one int for the call (request i then uses `call_seed(seed, i)`: its
samples depend on its position in the batch) or one seed per request (`omegaprm.tree.drive`
gives each request a seed from its own search's seed and the search's request count, so a
question's records do not depend on which questions share its batches). `TemplatePolicy`
turns any `mode_jax.serve.TextModel` (the in-process model, an OpenAI-compatible server) into
a Policy: the prompt template and the sampling settings are the policy's.
"""

from __future__ import annotations

from typing import Optional, Protocol, Sequence

from mode_jax.serve import api
from mode_jax.serve.api import Sample, Seeds, check_shape, request_seeds


class Policy(Protocol):
  def rollout(self, requests: Sequence[tuple[str, str]], n: int, *,
              seed: Seeds) -> list[list[Sample]]:
    """Completions of each (question, prefix) request, `n` each, seeded per request."""
    ...


DEFAULT_TEMPLATE = "Question: {question}\nAnswer:\n"


class TemplatePolicy:
  """prompt = template.format(question=question) + prefix, completed by `model` (a
  `mode_jax.serve.TextModel`) with `sampling` (and `task_id` for task-routed adapters)."""

  def __init__(self, model, template: str = DEFAULT_TEMPLATE,
               sampling: api.Sampling = api.Sampling(), task_id: Optional[int] = None):
    if "{question}" not in template:
      raise ValueError(f"policy template must contain '{{question}}', got {template!r}")
    self.model, self.template, self.sampling, self.task_id = model, template, sampling, task_id

  def prompt(self, question: str, prefix: str) -> str:
    """The question in the template, followed by the prefix."""
    return self.template.format(question=question) + prefix

  def rollout(self, requests, n, *, seed):
    """The model's completions of the templated prompts (see `Policy.rollout`)."""
    if n < 1:
      raise ValueError(f"rollout n must be >= 1, got {n}")
    if not requests:
      return []
    out = self.model.complete(
        [self.prompt(q, p) for q, p in requests], n, seeds=request_seeds(seed, len(requests)),
        task_ids=None if self.task_id is None else [self.task_id] * len(requests),
        **self.sampling.kwargs())
    check_shape(out, len(requests), n, type(self.model).__name__)
    return out


def template_stops(template: str) -> tuple:
  """Stop strings implied by a prompt template: a policy that writes past its answer starts
  the next example with the template's lead-in, the last line before the question
  ("Question:" -> "\nQuestion:", also after few-shot examples), so generation stops there.
  () when the question starts its line."""
  lead = template.split("{question}", 1)[0].split("\n")[-1].strip()
  return ("\n" + lead,) if lead else ()
