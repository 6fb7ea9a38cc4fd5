"""`Transformer`: the Linen decoder-only backbone shared by every family.

    net = Transformer(cfg)
    logits = net.apply({"params": params}, tokens)                        # [B, L, V] float32
    logits, cache = net.apply({"params": params}, tokens, cache=cache)    # incremental decoding
    hidden = net.apply({"params": params}, tokens, head=False)             # [B, L, E] final-normed

Parameter tree (scan_layers=False): embedder/embedding, layers_{i}/{attn_norm, attn/{q,k,v,o},
mlp_norm, mlp/{gate,up,down}}, final_norm, lm_head (untied only); with `qk_norm` also
attn/{q_norm,k_norm}, with `post_norms` also post_attn_norm and post_mlp_norm. With scan_layers=True the
layers live under `layers` with a leading layer axis (logical name "layers").
"""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mode_jax.model.config import ModelConfig
from mode_jax.model.injection import ProjectionAdapter
from mode_jax.model.kv_cache import KVCache
from mode_jax.model.layers import (INIT, DecoderLayer, RMSNorm, attention_mask, constrain,
                                   rope_table, vocab_logits)

Array = jax.Array
# Collections with one entry per layer (stacked along axis 0 under scan): parameters, and what
# the adapters sow (auxiliary losses, routing statistics).
_PER_LAYER_COLLECTIONS = ("params", "aux_loss", "routing", "intermediates")


class Transformer(nn.Module):
  """Decoder backbone; `adapter` (e.g. an `adapters.AdapterConfig`, see `injection`) wraps its
  target projections."""

  cfg: ModelConfig
  adapter: Optional[ProjectionAdapter] = None

  @nn.compact
  def __call__(self, tokens: Array, *, positions: Optional[Array] = None,
               segment_ids: Optional[Array] = None, task_ids: Optional[Array] = None,
               cache: Optional[KVCache] = None, head: bool = True,
               last_only: bool = False):
    """tokens int32 [B, T]; positions int32 [B, T] (default: 0..T-1, or from the cache);
    segment_ids int32 [B, T] (packing; ignored with a cache); task_ids int32 [B] or [B, T]
    (per token, for packed rows mixing tasks; read by task-routed adapters).
    Returns float32 logits [B, T, V] (or hidden states if head=False), plus the updated cache
    when one is given. `last_only` keeps only the last position (prefill of a sampler: with left
    padding every row's last prompt token is at the end), so the vocab projection runs once."""
    cfg = self.cfg
    dt = cfg.compute_dtype
    if tokens.ndim != 2:
      raise ValueError(f"tokens must be [batch, length], got shape {tokens.shape}")
    b, t = tokens.shape
    if positions is None:
      positions = cache.positions(t) if cache is not None else jnp.broadcast_to(
          jnp.arange(t, dtype=jnp.int32), (b, t))

    embedder = Embedder(cfg, name="embedder")
    x = embedder.encode(tokens)
    x = constrain(x, "batch", "length", "embed")

    rope = rope_table(cfg, positions, dt)
    if cache is None:
      mask_fn, end = (lambda w: attention_mask(t, segment_ids, window=w)), None
    else:
      mask_fn = lambda w: attention_mask(t, None, cache.end, cache.start, cache.max_len, w)
      end = cache.end
    mask = mask_fn(None)
    # Sliding layers: windowed mask and (Gemma 3) their own RoPE table, built once per forward.
    local_rope = local_mask = None
    if cfg.has_local_layers:
      local_mask = mask_fn(cfg.sliding_window)
      if cfg.rope_local_theta is not None:
        local_rope = rope_table(cfg, positions, dt, local=True)
    layer_cls = DecoderLayer
    if cfg.remat:
      policy = (jax.checkpoint_policies.dots_with_no_batch_dims_saveable
                if cfg.remat_policy == "dots" else None)   # None: save nothing
      layer_cls = nn.remat(layer_cls, prevent_cse=not cfg.scan_layers, policy=policy)
    new_k = new_v = None
    if cfg.scan_layers:
      kv = None if cache is None else (cache.k, cache.v)
      # Heterogeneous layers: the layer type is a scanned input (one bool per layer).
      flags = (jnp.array([cfg.is_local(i) for i in range(cfg.num_layers)])
               if cfg.has_local_layers else False)
      bc = nn.broadcast
      scanned = nn.scan(layer_cls, variable_axes={c: 0 for c in _PER_LAYER_COLLECTIONS},
                        split_rngs={"params": True},
                        in_axes=(bc, bc, bc, 0, bc, bc, bc,
                                 0 if cfg.has_local_layers else bc),
                        length=cfg.num_layers, metadata_params={nn.PARTITION_NAME: "layers"})
      x, ys = scanned(cfg, self.adapter, name="layers")(x, rope, mask, task_ids, kv, end,
                                                         local_rope, local_mask, flags)
      if cache is not None:
        new_k, new_v = ys
    else:
      ks, vs = [], []
      for i in range(cfg.num_layers):
        kv = None if cache is None else (cache.k[i], cache.v[i])
        x, layer_kv = layer_cls(cfg, self.adapter, name=f"layers_{i}")(
            x, rope, mask, task_ids, kv, end, local_rope, local_mask, cfg.is_local(i))
        if cache is not None:
          ks.append(layer_kv[0])
          vs.append(layer_kv[1])
      new_k, new_v = tuple(ks), tuple(vs)

    if last_only:
      x = x[:, -1:]
    x = RMSNorm(cfg.norm_eps, cfg.norm_plus_one, dt, cfg.weight_dtype, name="final_norm")(x)
    if head:
      if cfg.tie_embeddings:
        out = embedder.attend(x)
      else:
        kernel = self.param("lm_head", nn.with_logical_partitioning(INIT, ("embed", "vocab")),
                            (cfg.embed_dim, cfg.vocab_size), cfg.weight_dtype)
        out = vocab_logits(x, kernel, tied=False, dtype=dt, cap=cfg.final_softcap)
      out = constrain(out.astype(jnp.float32), "batch", "length", "vocab")
    else:
      out = x
    if cache is None:
      return out
    return out, cache.replace(k=new_k, v=new_v, end=cache.end + t)


def _mesh_axes(logical: str) -> tuple:
  axes = nn.logical_to_mesh_axes((logical,))[0]
  return () if axes is None else (axes,) if isinstance(axes, str) else tuple(axes)


def vocab_parallel_take(table: Array, tokens: Array) -> Array:
  """table[tokens] for a table whose vocabulary is split over mesh axes (the current mesh and
  logical rules): each device looks up the tokens of its batch shard in its own vocab rows
  (others give 0) and one psum over the vocab axes adds them (Megatron's vocab-parallel
  embedding), instead of the all-gather of the whole table that a plain gather costs. The
  table's embed shards are gathered first (FSDP). Without a mesh it is a plain gather."""
  mesh = jax.sharding.get_abstract_mesh()
  vocab_axes = _mesh_axes("vocab")
  if mesh.empty or not vocab_axes:
    return jnp.take(table, tokens, axis=0)
  batch_axes, embed_axes = _mesh_axes("batch"), _mesh_axes("embed")
  spec_b = batch_axes if len(batch_axes) != 1 else batch_axes[0]
  n_shards = int(np.prod([mesh.shape[a] for a in vocab_axes]))
  if table.shape[0] % n_shards:
    return jnp.take(table, tokens, axis=0)
  rows = table.shape[0] // n_shards

  def local(tab, tok):
    if embed_axes:
      tab = jax.lax.all_gather(tab, embed_axes, axis=1, tiled=True)
    shard = jax.lax.axis_index(vocab_axes)
    idx = tok - shard * rows
    mine = (idx >= 0) & (idx < rows)
    x = jnp.take(tab, jnp.where(mine, idx, 0), axis=0) * mine[..., None].astype(tab.dtype)
    return jax.lax.psum(x, vocab_axes)

  from jax.sharding import PartitionSpec as P
  return jax.shard_map(local, mesh=mesh,
                       in_specs=(P(vocab_axes, embed_axes or None), P(spec_b or None, None)),
                       out_specs=P(spec_b or None, None, None))(table, tokens)


class Embedder(nn.Module):
  """Token embedding; `attend` gives tied-embedding logits. Gemma scales by sqrt(embed_dim)."""

  cfg: ModelConfig

  def setup(self):
    """The embedding table [vocab, embed]."""
    self.embedding = self.param("embedding",
                                nn.with_logical_partitioning(INIT, ("vocab", "embed")),
                                (self.cfg.vocab_size, self.cfg.embed_dim), self.cfg.weight_dtype)

  def encode(self, tokens: Array) -> Array:
    """Token ids [B, L] -> embeddings [B, L, E] in the compute dtype (Gemma: scaled by sqrt(E))."""
    dt = self.cfg.compute_dtype
    if self.cfg.embed_lookup == "vocab_parallel" and tokens.ndim == 2:
      x = vocab_parallel_take(self.embedding, tokens).astype(dt)
    else:
      x = jnp.take(self.embedding, tokens, axis=0).astype(dt)
    if self.cfg.embed_scale:
      # HF Gemma multiplies by sqrt(hidden) cast to the weights' dtype.
      x = x * jnp.asarray(self.cfg.embed_dim ** 0.5, dt)
    return x

  def attend(self, x: Array) -> Array:
    """Hidden states [B, L, E] -> logits [B, L, V] through the tied embedding (soft-capped when
    the model caps them)."""
    return vocab_logits(x, self.embedding, tied=True, dtype=x.dtype, cap=self.cfg.final_softcap)


def head_weight(cfg: ModelConfig, params: dict) -> Array:
  """The vocabulary projection of `params`: the embedding [V, E] when tied, else lm_head
  [E, V] (use with `layers.vocab_logits(x, w, tied=cfg.tie_embeddings, ...)`)."""
  if cfg.tie_embeddings:
    return params["embedder"]["embedding"]
  return params["lm_head"]
