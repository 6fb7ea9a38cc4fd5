"""The text-generation interface every backend implements (`TextModel`), its sample type and
the per-request seeds that make a sample independent of the batch it shares.

    class TextModel(Protocol):
      def complete(self, prompts, n=1, *, max_tokens=256, temperature=1.0, top_p=1.0,
                   top_k=0, stop=(), seeds=None, task_ids=None) -> list[list[Sample]]
      def score(self, prompts, continuations, task_ids=None) -> np.ndarray

Seeds: `seeds` is one int for the call (prompt i then uses `call_seed(seeds, i)`: its samples
depend on its position in the call) or one int per prompt. Sample j of prompt i is drawn from
`call_seed(seed_i, j)` by every backend of the project, so a sample depends on (seed, prompt,
sample index) only: not on the batch, the chunking of rows or a server's concurrency.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Protocol, Sequence, Union

import numpy as np


@dataclasses.dataclass(frozen=True)
class Sample:
  """One generated continuation.

  Attributes:
    text: the continuation only (not the prompt), cut right after the first stop string.
    num_tokens: generated tokens (including a stop / EOS token).
    finished: False when cut by the token limit (OpenAI finish_reason "length").
    logprob: summed log-probability of the generated tokens under the model (temperature 1,
      unfiltered) when the backend reports it; not part of equality (its last bits vary with
      the batch shape).
    token_logprobs: the per-token log-probabilities (when asked for).
    tokens: the per-token texts (when asked for).
  """
  text: str
  num_tokens: int
  finished: bool = True
  logprob: Optional[float] = dataclasses.field(default=None, compare=False)
  token_logprobs: Optional[tuple] = dataclasses.field(default=None, compare=False)
  tokens: Optional[tuple] = dataclasses.field(default=None, compare=False)


Seeds = Union[int, Sequence[int], None]


@dataclasses.dataclass(frozen=True)
class Sampling:
  """Sampling settings of a `complete` call, for callers that hold them (a policy, a judge):
  `model.complete(prompts, n, seeds=..., **sampling.kwargs())`. temperature 0 is greedy;
  top_k 0 and top_p 1 are off."""
  max_tokens: int = 256
  temperature: float = 1.0
  top_p: float = 1.0
  top_k: int = 0
  stop: tuple = ()

  def kwargs(self) -> dict:
    """The settings as `complete` keyword arguments."""
    return dataclasses.asdict(self)

  def replace(self, **kw) -> "Sampling":
    """A copy with some settings changed."""
    return dataclasses.replace(self, **kw)


class TextModel(Protocol):
  """Text completion and continuation scoring (see the module docstring)."""

  def complete(self, prompts: Sequence[str], n: int = 1, *, max_tokens: int = 256,
               temperature: float = 1.0, top_p: float = 1.0, top_k: int = 0,
               stop: Sequence[str] = (), seeds: Seeds = None,
               task_ids: Optional[Sequence[int]] = None,
               logprobs: bool = False) -> list[list[Sample]]:
    """`n` samples of each prompt (temperature 0: greedy)."""
    ...

  def score(self, prompts: Sequence[str], continuations: Sequence[str],
            task_ids: Optional[Sequence[int]] = None) -> np.ndarray:
    """float64 [len(prompts)]: log p(continuation_i | prompt_i), summed over its tokens."""
    ...


def call_seed(seed: int, index: int) -> int:
  """The seed of the `index`-th prompt (or sample) of a call seeded with `seed`."""
  return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


def request_seeds(seeds: Seeds, count: int) -> list[int]:
  """One seed per prompt: `call_seed(seeds, i)` for one int (None reads as 0), or the given
  per-prompt seeds (checked to number `count`)."""
  if seeds is None:
    seeds = 0
  if isinstance(seeds, (int, np.integer)):
    return [call_seed(int(seeds), i) for i in range(count)]
  out = [int(s) for s in seeds]
  if len(out) != count:
    raise ValueError(f"{len(out)} per-request seeds for {count} requests")
  return out


def sample_seeds(seeds: Seeds, count: int, n: int) -> list[int]:
  """The row seed of sample j of prompt i, flattened prompt-major: call_seed(seed_i, j)."""
  return [call_seed(s, j) for s in request_seeds(seeds, count) for j in range(n)]


def check_settings(n: int, max_tokens: int, temperature: float, top_p: float,
                   top_k: int) -> None:
  """A ValueError naming the setting that is out of range."""
  for name, value, ok in (("n", n, n >= 1), ("max_tokens", max_tokens, max_tokens >= 1),
                          ("temperature", temperature, temperature >= 0),
                          ("top_p", top_p, 0 < top_p <= 1), ("top_k", top_k, top_k >= 0)):
    if not ok:
      raise ValueError(f"complete(): {name}={value} is out of range")


def check_shape(out, num_prompts: int, n: int, who: str) -> None:
  """A ValueError naming `who` unless `out` has `n` samples for each of the prompts."""
  if len(out) != num_prompts or any(len(c) != n for c in out):
    raise ValueError(f"{who} returned {[len(c) for c in out]} samples for "
                     f"{num_prompts} prompts x n={n}")
