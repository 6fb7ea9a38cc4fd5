"""Padded batches of token sequences of different lengths (numpy only): sorted by length,
batch and length rounded up to powers of two so few jit shapes compile. Used by the PRM scorer
and the dataset report's backbone encoder."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def _bucket(n: int, minimum: int = 32) -> int:
  b = minimum
  while b < n:
    b *= 2
  return b


def padded_batches(seqs: Sequence[Sequence[int]], batch_size: int, max_len: int,
                   length_multiple: int = 0):
  """Yields (indices into seqs, tokens [B, T], segment_ids, positions) over `seqs` in order of
  length, with B and T rounded up to powers of two (few jit shapes); padding rows and columns
  have segment id 0. `length_multiple` > 0: T is rounded up to a multiple of it instead (less
  padding for many short sequences of similar length, at the price of more shapes: e.g. 16
  pads 65-80 tokens to 80, not 128). ValueError if a sequence is longer than max_len."""
  order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
  for start in range(0, len(order), batch_size):
    idx = order[start:start + batch_size]
    longest = max(len(seqs[i]) for i in idx)
    t = (-(-longest // length_multiple) * length_multiple if length_multiple > 0
         else _bucket(longest))
    t = min(t, max_len)
    if longest > t:
      raise ValueError(f"a sequence has {longest} tokens, more than max_seq_len {max_len}")
    b = _bucket(len(idx), 8)
    toks = np.zeros((b, t), np.int32)
    seg = np.zeros((b, t), np.int32)
    for r, i in enumerate(idx):
      toks[r, :len(seqs[i])] = seqs[i]
      seg[r, :len(seqs[i])] = 1
    yield idx, toks, seg, np.broadcast_to(np.arange(t, dtype=np.int32), (b, t))
