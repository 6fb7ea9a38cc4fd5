"""Preallocated KV cache passed explicitly through `Transformer.apply(..., cache=cache)`.

Slots [0, S) are shared by all rows; row b's valid keys start at `start[b]` (left padding), and
`end` counts the slots written so far. Without `scan_layers` each layer owns its own buffer (a
tuple), so updates inside a jitted decode loop happen in place; with `scan_layers` the buffers
are stacked on a leading layer axis.
"""

from __future__ import annotations

from typing import Optional

import flax.struct
import jax
import jax.numpy as jnp

from mode_jax.model.config import ModelConfig


@flax.struct.dataclass
class KVCache:
  k: object               # keys [B, K, D, S] per layer (tuple), or [L, B, K, D, S] when scanned
  v: object               # values [B, K, S, D] per layer, or [L, B, K, S, D]
  end: jax.Array          # int32 []: slots written so far (next write position)
  start: jax.Array        # int32 [B]: first valid slot of each row

  @classmethod
  def init(cls, cfg: ModelConfig, batch: int, max_len: int,
           start: Optional[jax.Array] = None, dtype=None) -> "KVCache":
    """Empty cache of `max_len` slots; `start` marks left padding (default: none)."""
    dtype = cfg.compute_dtype if dtype is None else dtype
    k_shape = (batch, cfg.num_kv_heads, cfg.head_dim, max_len)   # keys stored transposed
    v_shape = (batch, cfg.num_kv_heads, max_len, cfg.head_dim)
    if cfg.scan_layers:
      k = jnp.zeros((cfg.num_layers,) + k_shape, dtype)
      v = jnp.zeros((cfg.num_layers,) + v_shape, dtype)
    else:
      k = tuple(jnp.zeros(k_shape, dtype) for _ in range(cfg.num_layers))
      v = tuple(jnp.zeros(v_shape, dtype) for _ in range(cfg.num_layers))
    start = jnp.zeros((batch,), jnp.int32) if start is None else jnp.asarray(start, jnp.int32)
    return cls(k=k, v=v, end=jnp.zeros((), jnp.int32), start=start)

  @property
  def max_len(self) -> int:
    """Slots per row."""
    return self.v[0].shape[-2] if isinstance(self.v, tuple) else self.v.shape[-2]

  def positions(self, num_tokens: int) -> jax.Array:
    """RoPE positions of the next `num_tokens` tokens of every row: slot - start[b]."""
    slots = self.end + jnp.arange(num_tokens, dtype=jnp.int32)
    return jnp.maximum(slots[None, :] - self.start[:, None], 0)
