"""Helpers the Pallas kernels share (as megablox's `common.py`): padding to block multiples."""

from __future__ import annotations

import jax.numpy as jnp


def pad_to(x, axis: int, multiple: int):
  """`x` zero-padded at the end of `axis` to a multiple of `multiple` (unchanged if it is)."""
  size = x.shape[axis]
  extra = -size % multiple
  if not extra:
    return x
  widths = [(0, 0)] * x.ndim
  widths[axis] = (0, extra)
  return jnp.pad(x, widths)


def next_pow2(n: int) -> int:
  """The smallest power of two >= n (1 for n <= 1)."""
  return 1 << max(0, (n - 1).bit_length())
