"""Building blocks of the decoder: RMSNorm, RoPE, named projections, attention, gated MLP.

Every parameter is created with `nn.with_logical_partitioning` (axis names `vocab, embed, heads,
kv_heads, head_dim, mlp`) and key activations get `nn.with_logical_constraint`; both are no-ops
without a mesh and a rules table, and shard the model under `nn.logical_axis_rules(...)`.
Layouts match HF after a transpose/reshape (see `hf_io`): kernels are stored input-major,
q/k/v as [embed, heads, head_dim] and o as [heads, head_dim, embed].
"""

from __future__ import annotations

import functools
import math
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mode_jax.model.config import ModelConfig
from mode_jax.model.injection import ProjectionAdapter, adapter_for

Array = jax.Array
# Large finite negative instead of -inf, so that fully masked rows never produce NaN.
_MASK_VALUE = -0.7 * float(jnp.finfo(jnp.float32).max)
INIT = nn.initializers.normal(stddev=0.02)  # HF `initializer_range`


def constrain(x: Array, *axes: str) -> Array:
  """`x` with the logical axis names `axes` (a sharding constraint under the run's rules)."""
  return nn.with_logical_constraint(x, axes)


class RMSNorm(nn.Module):
  """RMSNorm computed in float32; Gemma variant scales by (1 + w) with w initialised to 0."""

  eps: float
  plus_one: bool = False
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  axis_name: str = "embed"            # logical name of the normalised axis ("head_dim": q/k)

  @nn.compact
  def __call__(self, x: Array) -> Array:
    init = nn.initializers.zeros if self.plus_one else nn.initializers.ones
    scale = self.param("scale", nn.with_logical_partitioning(init, (self.axis_name,)),
                       (x.shape[-1],), self.param_dtype)
    xf = x.astype(jnp.float32)
    y = xf * jax.lax.rsqrt(jnp.mean(xf * xf, axis=-1, keepdims=True) + self.eps)
    if self.plus_one:   # HF Gemma: (x_hat * (1 + w)).to(dtype)
      return (y * (1.0 + scale.astype(jnp.float32))).astype(self.dtype)
    # HF Llama/Qwen2: w * x_hat.to(dtype)
    return (scale.astype(self.dtype) * y.astype(self.dtype)).astype(self.dtype)


def softcap(x: Array, cap: Optional[float]) -> Array:
  """Gemma 2 logit soft-capping cap * tanh(x / cap); identity for cap None."""
  return x if cap is None else jnp.tanh(x / cap) * cap


def vocab_logits(x: Array, weight: Array, *, tied: bool, dtype,
                 cap: Optional[float] = None) -> Array:
  """float32 logits [..., V] of final-normed states x [..., E]: x E^T with the tied embedding
  [V, E], else x W with the LM head [E, V] (matmul in `dtype`, accumulated in float32), then
  soft-capped when `cap` is set (`ModelConfig.final_softcap`, Gemma 2).

  The backward casts the float32 logit cotangent to `dtype` before its two matmuls (float32
  accumulation again), so a bf16 model never holds a float32 copy of the [V, E] head (3 GiB for
  Gemma 7B's 256k x 3072), which mixed-dtype autodiff of the einsum would make."""
  return softcap(_vocab_logits(x.astype(dtype), weight.astype(dtype), tied), cap)


def _logits_spec(tied: bool) -> str:
  return "...e,ve->...v" if tied else "...e,ev->...v"


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _vocab_logits(x, w, tied):
  return jnp.einsum(_logits_spec(tied), x, w, preferred_element_type=jnp.float32)


def _vocab_logits_fwd(x, w, tied):
  return _vocab_logits(x, w, tied), (x, w)


def vocab_logits_grads(x, w, g, tied: bool):
  """(dx, dw) of `x W^T` (tied, w [V, E]) or `x W` (w [E, V]) for the logit cotangent g [..., V]:
  g cast to x's dtype, both matmuls accumulated in float32, results in x's / w's dtypes."""
  g = g.astype(x.dtype)
  dx = jnp.einsum("...v,ve->...e" if tied else "...v,ev->...e", g, w,
                  preferred_element_type=jnp.float32).astype(x.dtype)
  xs, gs = x.reshape(-1, x.shape[-1]), g.reshape(-1, g.shape[-1])
  dw = (jnp.einsum("te,tv->ve", xs, gs, preferred_element_type=jnp.float32) if tied
        else jnp.einsum("te,tv->ev", xs, gs, preferred_element_type=jnp.float32))
  return dx, dw.astype(w.dtype)


def _vocab_logits_bwd(tied, res, g):
  x, w = res
  return vocab_logits_grads(x, w, g, tied)


_vocab_logits.defvjp(_vocab_logits_fwd, _vocab_logits_bwd)


class Projection(nn.Module):
  """Linear map contracting the trailing `len(in_axes)` dims of x into `out_shape`.

  This is the unit the adapters wrap: attention has q, k, v, o and the MLP gate, up, down, each
  a `Projection` with that name. `in_axes`/`out_axes` are the logical names of the kernel dims.
  With `adapter` set (see `injection`), its sub-module named "adapter" computes x W0 + its term
  from the frozen kernel (dense ops or one fused kernel, the adapter's choice), then the bias is
  added; the kernel and bias are unchanged.
  """

  out_shape: Sequence[int]
  in_axes: Sequence[str]
  out_axes: Sequence[str]
  use_bias: bool = False
  dtype: Any = jnp.float32
  param_dtype: Any = jnp.float32
  adapter: Optional[ProjectionAdapter] = None

  @nn.compact
  def __call__(self, x: Array, task_ids: Optional[Array] = None) -> Array:
    n_in = len(self.in_axes)
    in_shape = x.shape[x.ndim - n_in:]
    kernel = self.param(
        "kernel", nn.with_logical_partitioning(INIT, tuple(self.in_axes) + tuple(self.out_axes)),
        tuple(in_shape) + tuple(self.out_shape), self.param_dtype)
    if self.adapter is None:
      y = jnp.tensordot(x.astype(self.dtype), kernel.astype(self.dtype), axes=n_in)
    else:   # x W0 + the adapter term (injection.ProjectionAdapter)
      y = self.adapter.projection_module(tuple(self.out_shape), tuple(self.in_axes),
                                         tuple(self.out_axes), self.dtype,
                                         name="adapter")(x, kernel, task_ids)
    if self.use_bias:
      bias = self.param("bias", nn.with_logical_partitioning(nn.initializers.zeros,
                                                             tuple(self.out_axes)),
                        tuple(self.out_shape), self.param_dtype)
      y = y + bias.astype(self.dtype)
    # Rows stay sharded like the batch (and their cotangents too): with FSDP the kernel's
    # input dim is sharded over the same mesh axis as the batch, and without this XLA may
    # gather the whole global batch instead of the kernel.
    return constrain(y, "batch", "length", *self.out_axes) if y.ndim == 2 + len(
        self.out_axes) else y


def rope_inv_freq(cfg: ModelConfig, local: bool = False) -> Array:
  """Inverse frequencies of RoPE, with HF's `llama3` / `linear` scaling when configured.
  `local`: of sliding-window layers, which use `rope_local_theta` unscaled when it is set
  (Gemma 3's rule), else the global table."""
  d = cfg.head_dim
  if local and cfg.rope_local_theta is not None:
    return 1.0 / (cfg.rope_local_theta ** (jnp.arange(0, d, 2, dtype=jnp.float32) / d))
  inv = 1.0 / (cfg.rope_theta ** (jnp.arange(0, d, 2, dtype=jnp.float32) / d))
  rs = cfg.rope_scaling
  if rs.rope_type == "linear":
    inv = inv / rs.factor
  elif rs.rope_type == "llama3":
    low_wl = rs.original_max_position_embeddings / rs.low_freq_factor
    high_wl = rs.original_max_position_embeddings / rs.high_freq_factor
    wavelen = 2 * math.pi / inv
    scaled = jnp.where(wavelen > low_wl, inv / rs.factor, inv)
    smooth = (rs.original_max_position_embeddings / wavelen - rs.low_freq_factor) / (
        rs.high_freq_factor - rs.low_freq_factor)
    smoothed = (1 - smooth) * scaled / rs.factor + smooth * scaled
    medium = (wavelen >= high_wl) & (wavelen <= low_wl)
    inv = jnp.where(medium, smoothed, scaled)
  return inv


def rope_table(cfg: ModelConfig, positions: Array, dtype,
               local: bool = False) -> tuple[Array, Array]:
  """(cos, sin) [B, T, 1, D] for rotate-half RoPE; computed once per forward, shared by layers
  (`local`: the sliding layers' table, see `rope_inv_freq`)."""
  freqs = positions.astype(jnp.float32)[..., None] * rope_inv_freq(cfg, local)   # [B, T, D/2]
  emb = jnp.concatenate([freqs, freqs], axis=-1)[:, :, None, :]
  return jnp.cos(emb).astype(dtype), jnp.sin(emb).astype(dtype)


def apply_rope(x: Array, rope: tuple[Array, Array]) -> Array:
  """Rotate-half RoPE (HF convention). x: [B, T, N, D]."""
  cos, sin = rope
  x1, x2 = jnp.split(x, 2, axis=-1)
  return x * cos + jnp.concatenate([-x2, x1], axis=-1) * sin


def attention_mask(t: int, segment_ids: Optional[Array], cache_end=None, cache_start=None,
                   cache_len: int = 0, window: Optional[int] = None) -> Array:
  """Boolean mask [B or 1, T, S]: causal (+ same segment), or by cache slot when decoding.

  With a cache, the queries sit at slots end..end+T-1 and a query at slot s sees the slots in
  [start_b, s] (start_b > 0 for left-padded rows). `window` (sliding layers) also drops keys
  `window` or more positions back: a query sees itself and the window - 1 before it, as HF's
  `kv_idx > q_idx - sliding_window`. Within a packed segment and within a cached row, slots
  are consecutive positions, so the window on indices is the window on positions. Decoding
  keeps the full cache and masks it (no ring buffer; see docs/model.md).
  """
  if cache_end is None:
    qi = jnp.arange(t)
    mask = (qi[None, :] <= qi[:, None])
    if window is not None:
      mask = mask & (qi[None, :] > qi[:, None] - window)
    mask = mask[None]
    if segment_ids is not None:
      mask = mask & (segment_ids[:, :, None] == segment_ids[:, None, :])
    return mask
  slots = jnp.arange(cache_len)
  q_slots = cache_end + jnp.arange(t)
  mask = (slots[None, None, :] <= q_slots[None, :, None]) & (
      slots[None, None, :] >= cache_start[:, None, None])
  if window is not None:
    mask = mask & (slots[None, None, :] > q_slots[None, :, None] - window)
  return mask


def pick(flag, local, full):
  """`local` where the layer is a sliding one, else `full` (pytrees of equal structure);
  `flag` is a Python bool (unrolled layers) or a traced bool (the scanned layer-type input)."""
  if local is full:
    return full
  if isinstance(flag, (bool, np.bool_)):
    return local if flag else full
  return jax.tree.map(lambda a, b: jnp.where(flag, a, b), local, full)


class Attention(nn.Module):
  """Causal multi-head / grouped-query / multi-query attention with an optional KV cache.

  `mask` [B or 1, T, S] comes from `attention_mask` (computed once per forward). With a cache,
  `kv=(k, v)` are this layer's buffers, keys stored transposed as [B, K, D, S] and values as
  [B, K, S, D] so both decode matmuls are plain (b, k)-batched GEMMs with no per-step transpose
  of the cache; the new keys/values are written at slots [end, end + T).
  """

  cfg: ModelConfig
  adapter: Optional[ProjectionAdapter] = None

  @nn.compact
  def __call__(self, x, rope, mask, kv=None, end=None, task_ids=None):
    cfg = self.cfg
    dt, pdt = cfg.compute_dtype, cfg.weight_dtype
    h, k, d = cfg.num_heads, cfg.num_kv_heads, cfg.head_dim
    proj = lambda name, shape, in_axes, out_axes, bias, inp: Projection(
        shape, in_axes, out_axes, use_bias=bias, dtype=dt, param_dtype=pdt,
        adapter=adapter_for(self.adapter, name), name=name)(inp, task_ids)
    q = proj("q", (h, d), ("embed",), ("heads", "head_dim"), cfg.qkv_bias, x)
    kk = proj("k", (k, d), ("embed",), ("kv_heads", "head_dim"), cfg.qkv_bias, x)
    v = proj("v", (k, d), ("embed",), ("kv_heads", "head_dim"), cfg.qkv_bias, x)
    if cfg.qk_norm:   # Gemma 3 / Qwen3: RMSNorm over head_dim before RoPE
      qk_norm = lambda name: RMSNorm(cfg.norm_eps, cfg.norm_plus_one, dt, pdt, "head_dim",
                                     name=name)
      q, kk = qk_norm("q_norm")(q), qk_norm("k_norm")(kk)
    q = constrain(apply_rope(q, rope), "batch", "length", "heads", "head_dim")
    kk = constrain(apply_rope(kk, rope), "batch", "length", "kv_heads", "head_dim")
    v = constrain(v, "batch", "length", "kv_heads", "head_dim")

    b, t = x.shape[:2]
    keys, values = kk.transpose(0, 2, 3, 1), v.transpose(0, 2, 1, 3)   # [B,K,D,T], [B,K,T,D]
    new_kv = None
    if kv is not None:
      k_buf, v_buf = kv
      keys = jax.lax.dynamic_update_slice(k_buf, keys.astype(k_buf.dtype), (0, 0, 0, end))
      values = jax.lax.dynamic_update_slice(v_buf, values.astype(v_buf.dtype), (0, 0, end, 0))
      # The cache shards like the heads that fill it (rows over data, kv heads over tensor).
      keys = constrain(keys, "batch", "kv_heads", "head_dim", None)
      values = constrain(values, "batch", "kv_heads", None, "head_dim")
      new_kv = (keys, values)
      keys, values = keys.astype(dt), values.astype(dt)

    qg = q.reshape(b, t, k, h // k, d).transpose(0, 2, 3, 1, 4) * jnp.asarray(cfg.attn_scale,
                                                                               dt)
    logits = jnp.einsum("bkgtd,bkds->bkgts", qg, keys, preferred_element_type=jnp.float32)
    logits = softcap(logits, cfg.attn_softcap)
    logits = jnp.where(mask[:, None, None], logits, _MASK_VALUE)
    probs = jax.nn.softmax(logits, axis=-1).astype(dt)
    out = jnp.einsum("bkgts,bksd->bkgtd", probs, values)
    out = out.transpose(0, 3, 1, 2, 4).reshape(b, t, h, d)
    out = constrain(out, "batch", "length", "heads", "head_dim")
    y = proj("o", (cfg.embed_dim,), ("heads", "head_dim"), ("embed",), cfg.o_bias, out)
    return y, new_kv


class MLP(nn.Module):
  """Gated MLP: down(act(gate(x)) * up(x)); SwiGLU for silu, GeGLU for gelu(_tanh)."""

  cfg: ModelConfig
  adapter: Optional[ProjectionAdapter] = None

  @nn.compact
  def __call__(self, x, task_ids=None):
    cfg = self.cfg
    mk = lambda name, shape, ia, oa, inp: Projection(
        shape, ia, oa, use_bias=cfg.mlp_bias, dtype=cfg.compute_dtype,
        param_dtype=cfg.weight_dtype, adapter=adapter_for(self.adapter, name),
        name=name)(inp, task_ids)
    gate = mk("gate", (cfg.mlp_dim,), ("embed",), ("mlp",), x)
    up = mk("up", (cfg.mlp_dim,), ("embed",), ("mlp",), x)
    if cfg.activation == "silu":
      act = jax.nn.silu(gate)
    else:
      act = jax.nn.gelu(gate, approximate=cfg.activation == "gelu_tanh")
    hidden = constrain(act * up, "batch", "length", "mlp")
    return mk("down", (cfg.embed_dim,), ("mlp",), ("embed",), hidden)


class DecoderLayer(nn.Module):
  """Pre-norm block: x + attn(norm(x)); x + mlp(norm(x)). With `post_norms` (Gemma 2/3) the
  sublayer outputs are normed too: x + norm(attn(norm(x))); x + norm(mlp(norm(x))).
  Returns (x, updated kv or None).

  `rope` / `mask` are the full-attention layers'; sliding layers (`is_local`, a Python bool or
  the traced per-layer flag of a scan) use `local_rope` / `local_mask` when given."""

  cfg: ModelConfig
  adapter: Optional[ProjectionAdapter] = None

  @nn.compact
  def __call__(self, x, rope, mask, task_ids, kv, end, local_rope=None, local_mask=None,
               is_local=False):
    cfg = self.cfg
    norm = lambda name: RMSNorm(cfg.norm_eps, cfg.norm_plus_one, cfg.compute_dtype,
                                cfg.weight_dtype, name=name)
    rope = pick(is_local, rope if local_rope is None else local_rope, rope)
    mask = pick(is_local, mask if local_mask is None else local_mask, mask)
    attn_out, new_kv = Attention(cfg, self.adapter, name="attn")(
        norm("attn_norm")(x), rope, mask, kv, end, task_ids)
    if cfg.post_norms:
      attn_out = norm("post_attn_norm")(attn_out)
    x = constrain(x + attn_out, "batch", "length", "embed")
    mlp_out = MLP(cfg, self.adapter, name="mlp")(norm("mlp_norm")(x), task_ids)
    if cfg.post_norms:
      mlp_out = norm("post_mlp_norm")(mlp_out)
    return constrain(x + mlp_out, "batch", "length", "embed"), new_kv
