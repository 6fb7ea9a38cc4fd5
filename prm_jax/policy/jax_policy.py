"""In-process policy: a `mode_jax` model (any preset or HF checkpoint, optionally with
adapters) sampled by the Foundation `Sampler`.

`SamplerBackend.complete(prompts, n, seed=...)` samples n continuations per prompt. All rows
of one call (every pending request of a search round x n, see `omegaprm.tree.drive`) go
through the sampler together, in chunks of at most `max_batch` rows; each row draws from its
own id (the prompt's seed, the sample index), so batching never changes a sample. Generation of a row stops
at EOS or at any of `stop` (e.g. a blank line after the answer); the text is cut after the stop
string. `jax_policy(...)` wraps it in the question template as a `Policy`.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from prm_jax.policy.base import (DEFAULT_TEMPLATE, Completion, TemplatePolicy, call_seed,
                                 request_seeds)


class SamplerBackend:

  def __init__(self, model_cfg, params, vocab, *, adapter=None, task_id: Optional[int] = None,
               max_new_tokens: int = 256, temperature: float = 1.0, top_k: int = 0,
               top_p: float = 1.0, stop: Sequence[str] = (), max_batch: int = 256,
               bos_id: Optional[int] = None):
    from mode_jax.model.sampling import Sampler
    if max_batch < 1 or max_new_tokens < 1:
      raise ValueError("SamplerBackend: max_batch and max_new_tokens must be >= 1")
    self.sampler = Sampler(model_cfg, params, vocab=vocab, adapter=adapter)
    self.vocab, self.task_id, self.bos_id = vocab, task_id, bos_id
    self.max_new_tokens, self.temperature = max_new_tokens, temperature
    self.top_k, self.top_p, self.stop, self.max_batch = top_k, top_p, tuple(stop), max_batch

  def encode(self, prompt: str) -> list[int]:
    """BOS (if any) + the prompt's token ids."""
    ids = ([self.bos_id] if self.bos_id is not None else []) + list(self.vocab.encode(prompt))
    return ids

  def complete(self, prompts: Sequence[str], n: int, *, seed,
               max_tokens: Optional[int] = None, temperature: Optional[float] = None,
               top_p: Optional[float] = None,
               stop: Optional[Sequence[str]] = None) -> list[list[Completion]]:
    """`n` sampled completions of each prompt; sample j of prompt i is seeded by (seed_i, j), so
    it does not depend on the batch it shares."""
    rows = [self.encode(p) for p in prompts for _ in range(n)]
    # Sample j of prompt i draws with its own id call_seed(seed_i, j): the same continuation
    # whatever else is in the call, however the rows are chunked.
    ids = [call_seed(s, j) for s in request_seeds(seed, len(prompts)) for j in range(n)]
    stop = self.stop if stop is None else tuple(stop)
    texts, counts, finished, logprobs = [], [], [], []
    for start in range(0, len(rows), self.max_batch):
      chunk = rows[start:start + self.max_batch]
      out = self.sampler.generate(
          chunk, max_new_tokens=max_tokens or self.max_new_tokens,
          temperature=self.temperature if temperature is None else temperature,
          top_k=self.top_k, top_p=self.top_p if top_p is None else top_p,
          rng=0, row_ids=ids[start:start + self.max_batch], stop_strings=stop,
          task_ids=None if self.task_id is None else [self.task_id] * len(chunk))
      texts += out.texts
      counts += [int(x) for x in out.lengths]
      finished += [bool(x) for x in out.finished]
      logprobs += [float(np.sum(out.logprobs[r, :int(out.lengths[r])]))
                   for r in range(len(chunk))]
    comps = [Completion(t, k, finished=f, logprob=lp)
             for t, k, f, lp in zip(texts, counts, finished, logprobs)]
    return [comps[i * n:(i + 1) * n] for i in range(len(prompts))]


def load_backend(checkpoint: str, *, vocab_kind: str = "bytes", vocab_path: str = "",
                 adapter_dir: str = "", **kw) -> SamplerBackend:
  """A backend from an HF-format checkpoint directory (and optionally a saved adapter)."""
  import os

  from mode_jax.data.vocab import make_vocab
  from mode_jax.model import hf_io
  if not os.path.exists(os.path.join(checkpoint, "config.json")):
    raise FileNotFoundError(f"policy checkpoint {checkpoint!r} has no config.json (an HF-format "
                            "directory is expected, e.g. the output of prm_jax.policy.sft)")
  cfg, params = hf_io.load_hf_checkpoint(checkpoint)
  adapter = None
  if adapter_dir:
    from mode_jax.adapters import export, params as ap
    aparams, adapter = export.load_adapter(adapter_dir)
    params = ap.combine(params, aparams)
  return SamplerBackend(cfg, params, make_vocab(vocab_kind, vocab_path or None), adapter=adapter,
                        **kw)


def jax_policy(backend: SamplerBackend, template: str = DEFAULT_TEMPLATE) -> TemplatePolicy:
  """A TemplatePolicy over the in-process sampler."""
  return TemplatePolicy(backend, template)
