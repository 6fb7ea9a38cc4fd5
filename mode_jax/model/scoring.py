"""Log-likelihood of given continuations under a (possibly adapted) decoder, teacher-forced.

    scorer = ContinuationScorer(cfg, params, adapter=acfg)
    lp = scorer.logprobs([(prompt_ids, continuation_ids), ...], task_ids=[...])   # [n] float

For each pair, sum_t log p(c_t | prompt, c_<t) under the model (temperature 1, unfiltered: the
same quantity `Sampler.generate` reports as `logprobs` of the tokens it chose). One forward
per batch of right-padded rows; the vocabulary projection runs only at the positions that
predict a continuation token ([B, C, V] logits, C = longest continuation, not [B, T, V]:
Gemma's 262k vocabulary times a 256-token prompt would be 17 GB per 64 rows in float32).

Used to rank a fixed set of answers (RecLLM's ranker scoring "1:" ... "5:" after "Pick:")
instead of sampling one and parsing it.
"""

from __future__ import annotations

from typing import Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from mode_jax.model import padding
from mode_jax.model.layers import vocab_logits
from mode_jax.model.transformer import Transformer, head_weight


def _bucket(n: int) -> int:
  return 1 << max(0, (n - 1).bit_length())


class ContinuationScorer:

  def __init__(self, cfg, params, *, adapter=None, batch_size: int = 64):
    self.cfg, self.batch_size = cfg, batch_size
    self.params = params
    model = Transformer(cfg, adapter=adapter)

    def forward(p, toks, seg, pos, tids, at, targets):
      h = model.apply({"params": p}, toks, segment_ids=seg, positions=pos, task_ids=tids,
                      head=False)                                           # [B, T, E]
      h = jnp.take_along_axis(h, at[..., None], axis=1)                    # [B, C, E]
      logits = vocab_logits(h, head_weight(cfg, p), tied=cfg.tie_embeddings,
                            dtype=cfg.compute_dtype, cap=cfg.final_softcap)
      lp = jax.nn.log_softmax(logits.astype(jnp.float32), -1)
      return jnp.take_along_axis(lp, targets[..., None], -1)[..., 0]        # [B, C]

    self._forward = jax.jit(forward)

  def logprobs(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]],
               task_ids: Optional[Sequence[int]] = None) -> np.ndarray:
    """[(prompt ids, continuation ids)] -> float64 [n] summed log-probs. A prompt must be
    non-empty (its last token predicts the first continuation token); an empty continuation
    scores 0. ValueError when prompt + continuation exceed the model's max_seq_len."""
    return np.array([float(np.sum(x)) for x in self.token_logprobs(pairs, task_ids)],
                    np.float64)

  def token_logprobs(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]],
                     task_ids: Optional[Sequence[int]] = None) -> list[np.ndarray]:
    """As `logprobs`, per token: float64 [len(continuation)] for each pair."""
    out: list = [np.zeros((0,), np.float64)] * len(pairs)
    for i, (p, _) in enumerate(pairs):
      if not len(p):
        raise ValueError(f"continuation scorer: pair {i} has an empty prompt")
    rows = [list(p) + list(c) for p, c in pairs]
    for idx, toks, seg, pos in padding.padded_batches(rows, self.batch_size,
                                                      self.cfg.max_seq_len):
      c_max = _bucket(max(1, max(len(pairs[i][1]) for i in idx)))
      at = np.zeros((len(toks), c_max), np.int32)
      targets = np.zeros((len(toks), c_max), np.int32)
      mask = np.zeros((len(toks), c_max), bool)
      for r, i in enumerate(idx):
        p_len, c = len(pairs[i][0]), list(pairs[i][1])
        at[r, :len(c)] = np.arange(p_len - 1, p_len - 1 + len(c))
        targets[r, :len(c)] = c
        mask[r, :len(c)] = True
      tids = None
      if task_ids is not None:
        tids = np.zeros((len(toks),), np.int32)
        tids[:len(idx)] = [task_ids[i] for i in idx]
      lp = np.asarray(jax.device_get(self._forward(self.params, toks, seg, pos, tids, at,
                                                   targets)), np.float64)
      for r, i in enumerate(idx):
        out[i] = lp[r, :len(pairs[i][1])]
    return out
