"""`TextModel` over the in-process JAX sampler: greedy, first line, each row routed to its
task's adapters (`task_ids`), prompts grouped by length so few programs compile.

Prompt and continuation are encoded apart and concatenated as token ids (BOS + prompt ids +
prefix ids), as the trainer builds its rows (inputs ids + targets ids): a `prefix` forced into
`complete` and a continuation scored by `score` are the first pieces of a target, tokenised as
in training."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from mode_jax.model import sampling, scoring
from mode_jax.train import run

MAX_NEW_TOKENS = {"dm": 8, "query": 20, "rank": 40, "profile": 56, "user": 40}


class SamplerTextModel:
  def __init__(self, model_cfg, params, vocab, table, *, adapter=None,
               bos_id: Optional[int] = None, prefix: str = "crs_", batch_size: int = 64,
               max_prompt_tokens: int = 0, max_new_tokens: Optional[dict] = None):
    self.sampler = sampling.Sampler(model_cfg, params, vocab=vocab, adapter=adapter)
    self.scorer = scoring.ContinuationScorer(model_cfg, self.sampler.params, adapter=adapter,
                                             batch_size=batch_size)
    self.vocab, self.table, self.bos, self.prefix = vocab, table, bos_id, prefix
    self.batch_size, self.max_prompt = batch_size, max_prompt_tokens
    self.max_new = dict(MAX_NEW_TOKENS, **(max_new_tokens or {}))
    self.calls: dict = {}
    self.tokens = 0

  def _encode(self, text: str) -> list:
    ids = list(self.vocab.encode(text))
    if self.max_prompt and len(ids) > self.max_prompt:
      ids = ids[-self.max_prompt:]             # the end of the dialogue matters most
    return ([self.bos] if self.bos is not None else []) + ids

  def complete(self, prompts: Sequence[str], task: str,
               prefixes: Optional[Sequence[str]] = None) -> list[str]:
    """First line of the greedy continuation of each prompt; with `prefixes`, of prompt +
    prefix (the prefix forced, not returned)."""
    self.calls[task] = self.calls.get(task, 0) + 1
    if not prompts:
      return []
    tid = self.table[self.prefix + task]
    enc = [self._encode(p) for p in prompts]
    if prefixes is not None:
      enc = [e + list(self.vocab.encode(x)) for e, x in zip(enc, prefixes, strict=True)]
    order = np.argsort([len(e) for e in enc], kind="stable")
    out: list = [""] * len(prompts)
    for start in range(0, len(order), self.batch_size):
      idx = order[start:start + self.batch_size]
      res = self.sampler.generate([enc[i] for i in idx], max_new_tokens=self.max_new[task],
                                  temperature=0.0, task_ids=[tid] * len(idx),
                                  stop_strings=("\n",))
      self.tokens += int(np.sum(res.lengths))
      for i, t in zip(idx, res.texts):
        out[i] = t.strip().split("\n")[0].strip()
    return out

  def score(self, prompts: Sequence[str], task: str,
            continuations: Sequence[Sequence[str]]) -> list[np.ndarray]:
    """Per prompt, the summed log-probability of each of its continuations (teacher-forced,
    `mode_jax.model.scoring`), under the task's adapters."""
    self.calls[task + " score"] = self.calls.get(task + " score", 0) + 1
    tid = self.table[self.prefix + task]
    pairs, owner = [], []
    for j, (p, cs) in enumerate(zip(prompts, continuations, strict=True)):
      enc = self._encode(p)
      for c in cs:
        pairs.append((enc, list(self.vocab.encode(c))))
        owner.append(j)
    lp = self.scorer.logprobs(pairs, [tid] * len(pairs)) if pairs else np.zeros((0,))
    owner = np.asarray(owner, np.int64)
    return [lp[owner == j] for j in range(len(prompts))]


def from_training(out: run.RunResult) -> SamplerTextModel:
  """The text model of a training run's result (base + trained adapters, host copy), with the
  run's vocabulary, task ids, BOS and prompt length."""
  data = out.spec.data
  bos = data.bos_id
  return SamplerTextModel(out.model_cfg, out.params(), data.vocab, data.table, adapter=out.acfg,
                          bos_id=bos, max_prompt_tokens=data.config.inputs_len
                          - (1 if bos is not None else 0))
