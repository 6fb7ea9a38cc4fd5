"""A process reward model: the `mode_jax` backbone plus a scalar head read at step ends.

`PRMModel(cfg, adapter)` is called like `Transformer` and returns one logit per token
([B, T] float32); the PRM's score of step i is the sigmoid of the logit at the last token of
step i. The backbone's params sit at the top level (`nn.share_scope`), so an HF checkpoint of
the backbone loads as is (drop its `lm_head`); the head lives under "adapter/prm_head", so with
LoRA / MoDE adapters (`adapter=AdapterConfig(...)`) the trainer's adapter split trains the
adapters and the head and freezes the base, and `save_adapter` exports both.

With `token_ids=(good, bad)` there is no new head: the step's logit is the language model's own
logit of the `good` token minus that of the `bad` one at the step's last token (Math-Shepherd's
reading of "+" / "-" at the step tag), so the LM head's knowledge is the starting point and
LoRA / MoDE adapters (or full fine-tuning) learn the rest; it needs a tied embedding (the
vocabulary projection is then part of the backbone's params).

`StepScorer` scores (question, steps) pairs in padded, length-bucketed jitted batches (lengths
rounded up to multiples of 16 tokens).
"""

from __future__ import annotations

import logging
from typing import Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mode_jax.adapters.config import AdapterConfig
from mode_jax.model.config import ModelConfig
from mode_jax.model.layers import vocab_logits
from mode_jax.model.padding import padded_batches
from mode_jax.model.transformer import Transformer

HEAD_KEY = "adapter"


class PRMHead(nn.Module):
  @nn.compact
  def __call__(self, h):
    k = self.param("kernel", nn.with_logical_partitioning(nn.initializers.zeros, ("embed",)),
                   (h.shape[-1],), jnp.float32)
    b = self.param("bias", nn.initializers.zeros, (1,), jnp.float32)   # (1,): safetensors
    return jnp.einsum("btd,d->bt", h.astype(jnp.float32), k) + b[0]     # has no 0-d arrays


class _Head(nn.Module):
  @nn.compact
  def __call__(self, h):
    return PRMHead(name="prm_head")(h)


class PRMModel(nn.Module):
  """Backbone + per-token step logit [B, T]: a scalar head, or with `token_ids` (good, bad)
  the LM's logit difference of those two tokens (module docstring)."""
  cfg: ModelConfig
  adapter: Optional[AdapterConfig] = None
  token_ids: Optional[tuple] = None

  def setup(self):
    """The backbone (sharing this module's scope, so its paths are the base's) and the head."""
    if self.token_ids is not None and not self.cfg.tie_embeddings:
      raise ValueError("PRMModel(token_ids=...): the token reading needs a backbone with tied "
                       "embeddings (its vocabulary projection is the embedding); use the "
                       "scalar head (prm.head='scalar')")
    self.backbone = Transformer(self.cfg, self.adapter)
    nn.share_scope(self, self.backbone)
    if self.token_ids is None:
      self.head = _Head(name=HEAD_KEY)

  def __call__(self, tokens, *, positions=None, segment_ids=None, task_ids=None):
    h = self.backbone(tokens, positions=positions, segment_ids=segment_ids, task_ids=task_ids,
                      head=False)
    if self.token_ids is None:
      return self.head(h)
    table = nn.meta.unbox(self.variables["params"]["embedder"]["embedding"])
    rows = jnp.take(table, jnp.asarray(self.token_ids, jnp.int32), axis=0)      # [2, E]
    two = vocab_logits(h, rows, tied=True, dtype=self.cfg.compute_dtype,
                       cap=self.cfg.final_softcap)                                 # [B, T, 2]
    return two[..., 0] - two[..., 1]


def backbone_params(params: dict) -> dict:
  """Transformer params usable as a PRM base (the LM head is not part of a PRM)."""
  return {k: v for k, v in params.items() if k != "lm_head"}


class StepScorer:
  """Per-step probabilities of a trained PRM for (question, steps) pairs."""

  def __init__(self, cfg: ModelConfig, params, vocab, *, adapter=None,
               template: str = "Question: {question}\nAnswer:\n", batch_size: int = 64,
               task_id: Optional[int] = None, bos_id: Optional[int] = None,
               token_ids: Optional[Sequence[int]] = None):
    """`bos_id`: put first in every row, as the PRM was trained (`prm.data.with_bos`);
    `token_ids`: the (good, bad) token reading instead of the scalar head (`PRMModel`)."""
    self.cfg, self.vocab, self.template, self.batch_size = cfg, vocab, template, batch_size
    self.task_id, self.bos_id = task_id, bos_id
    self.params = jax.device_put(nn.meta.unbox(params))
    model = PRMModel(cfg, adapter, None if token_ids is None else tuple(token_ids))
    self._apply = jax.jit(lambda p, t, s, pos, tid: model.apply(
        {"params": p}, t, segment_ids=s, positions=pos, task_ids=tid))

  def encode(self, question: str, steps: Sequence[str]) -> tuple[list[int], list[int]]:
    """(token ids, index of each step's last token) of the templated question and its steps."""
    ids = ([] if self.bos_id is None else [int(self.bos_id)]) + list(
        self.vocab.encode(self.template.format(question=question)))
    ends = []
    for s in steps:
      piece = list(self.vocab.encode(s))
      ids += piece
      ends.append(len(ids) - 1)   # an empty step is scored at the previous token
    return ids, ends

  def rows(self, enc) -> list[tuple[int, list[int], list[tuple[int, int]]]]:
    """Model rows [(item, tokens, [(step, position)])]. An item longer than the model's
    max_seq_len is not an error: its first window scores the steps that end inside it, and
    every later step is scored in its own window of the max_seq_len tokens ending at it (the
    question and the earliest steps fall out of view; a warning counts such items)."""
    m, rows, long_items = self.cfg.max_seq_len, [], 0
    for i, (ids, ends) in enumerate(enc):
      if len(ids) <= m:
        rows.append((i, ids, list(enumerate(ends))))
        continue
      long_items += 1
      rows.append((i, ids[:m], [(j, e) for j, e in enumerate(ends) if e < m]))
      rows += [(i, ids[e + 1 - m:e + 1], [(j, m - 1)]) for j, e in enumerate(ends) if e >= m]
    if long_items:
      logging.warning("PRM scorer: %d of %d items exceed max_seq_len %d tokens; their later "
                      "steps are scored on the last %d tokens before them", long_items,
                      len(enc), m, m)
    return rows

  def score(self, items: Sequence[tuple[str, Sequence[str]]]) -> list[np.ndarray]:
    """[(question, steps)] -> per item, the probability that each step is right so far."""
    enc = [self.encode(q, s) for q, s in items]
    out = [np.zeros((len(e[1]),)) for e in enc]
    rows = self.rows(enc)
    # rows of 16-token multiples: PRM inputs are many short solutions of similar length
    for idx, toks, seg, pos in padded_batches([r[1] for r in rows], self.batch_size,
                                              self.cfg.max_seq_len, length_multiple=16):
      tid = None if self.task_id is None else np.full((len(toks),), self.task_id, np.int32)
      logits = np.asarray(jax.device_get(self._apply(self.params, toks, seg, pos, tid)))
      for r, k in enumerate(idx):
        i, _, where = rows[k]
        for j, at in where:
          out[i][j] = 1.0 / (1.0 + np.exp(-logits[r, at]))
    return out


