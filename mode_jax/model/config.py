"""`ModelConfig`: one frozen dataclass that describes every supported decoder.

The Llama (3.x), Qwen2 / Qwen3 and Gemma (v1, 2, 3) families differ only in switches
(normalisation offset, embedding scale, MLP activation, biases, tying, q/k norms, sandwich
norms, per-layer sliding-window attention with its own RoPE base, logit soft-capping); they are
all fields here so that one Linen `Transformer` covers them. Sizes use the MaxText/T5X names:
`embed` (hidden size), `mlp` (intermediate size), `heads`, `kv_heads`, `head_dim`.
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import jax.numpy as jnp

ACTIVATIONS = ("silu", "gelu_tanh", "gelu")
ROPE_TYPES = ("default", "llama3", "linear")
MODEL_TYPES = ("llama", "qwen2", "qwen3", "gemma", "gemma2", "gemma3_text")
LAYER_TYPES = ("full_attention", "sliding_attention")   # HF `layer_types` values
REMAT_POLICIES = ("nothing", "dots")
EMBED_LOOKUPS = ("gather", "vocab_parallel")


@dataclasses.dataclass(frozen=True)
class RopeScaling:
  """RoPE frequency scaling as in HF `rope_parameters` (`llama3` for Llama 3.1+, `linear`)."""

  rope_type: str = "default"
  factor: float = 1.0
  low_freq_factor: float = 1.0
  high_freq_factor: float = 4.0
  original_max_position_embeddings: int = 8192

  def __post_init__(self):
    if self.rope_type not in ROPE_TYPES:
      raise ValueError(f"RopeScaling.rope_type={self.rope_type!r}; supported: {ROPE_TYPES}")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Architecture of a decoder-only transformer (hashable: usable as a static jit argument)."""

  vocab_size: int
  embed_dim: int
  num_layers: int
  num_heads: int
  num_kv_heads: int
  head_dim: int
  mlp_dim: int
  model_type: str = "llama"          # which HF family `save_hf_checkpoint` writes
  activation: str = "silu"           # silu -> SwiGLU (Llama, Qwen2); gelu_tanh -> GeGLU (Gemma)
  norm_eps: float = 1e-6
  norm_plus_one: bool = False        # Gemma's RMSNorm: x_hat * (1 + w)
  embed_scale: bool = False          # Gemma: embeddings multiplied by sqrt(embed_dim)
  qkv_bias: bool = False             # Qwen2: bias on q, k, v
  o_bias: bool = False               # Llama `attention_bias=True` also biases o
  mlp_bias: bool = False             # Llama `mlp_bias`
  tie_embeddings: bool = False       # logits = x @ embedding^T
  rope_theta: float = 10_000.0
  rope_scaling: RopeScaling = RopeScaling()
  max_seq_len: int = 2048
  bos_id: Optional[int] = None
  eos_id: Optional[int] = None
  extra_eos_ids: tuple = ()          # further stop ids (HF eos_token_id lists: Llama-3-Instruct
                                     # <|eot_id|>, Qwen <|im_end|>); see `eos_ids`
  pad_id: int = 0
  dtype: str = "float32"             # compute dtype (bfloat16 on accelerators)
  param_dtype: str = "float32"
  remat: bool = False                # nn.remat each layer
  remat_policy: str = "nothing"      # with remat: what a layer keeps for the backward
                                     # ("nothing": recompute all; "dots": keep the projection
                                     # outputs, recompute attention and elementwise ops)
  # embedding lookup: gather, or vocab_parallel (transformer.vocab_parallel_take: each device
  # looks up its own vocab rows, one psum, instead of all-gathering the table; the sharded
  # Sampler sets it when its mesh splits the vocabulary)
  embed_lookup: str = "gather"
  scan_layers: bool = False          # nn.scan over layers (params stacked on a leading axis)
  # --- Gemma 2 / Gemma 3 / Qwen3 switches (defaults: off) ---
  layer_types: tuple = ()            # per layer "full_attention" | "sliding_attention" (HF
                                     # `layer_types`); () = every layer full (global)
  sliding_window: Optional[int] = None   # sliding layers: a query sees the `sliding_window`
                                     # most recent keys, itself included (HF: kv > q - window)
  rope_local_theta: Optional[float] = None   # RoPE base of sliding layers, unscaled (Gemma 3:
                                     # 10,000 local vs rope_theta 1e6 global); None = rope_theta
  qk_norm: bool = False              # RMSNorm over head_dim on q and k before RoPE (Gemma 3, Qwen3)
  post_norms: bool = False           # Gemma 2/3 sandwich: norms after attention and MLP too
  query_pre_attn_scalar: Optional[float] = None   # attention scale s**-0.5 (None: head_dim)
  attn_softcap: Optional[float] = None    # Gemma 2: attention logits c * tanh(l / c)
  final_softcap: Optional[float] = None   # Gemma 2: output logits c * tanh(l / c)

  def __post_init__(self):
    def need(ok, msg):
      if not ok:
        raise ValueError(f"ModelConfig: {msg}")

    for name in ("vocab_size", "embed_dim", "num_layers", "num_heads", "num_kv_heads",
                 "head_dim", "mlp_dim"):
      need(int(getattr(self, name)) > 0, f"{name} must be positive, got {getattr(self, name)}")
    need(self.num_heads % self.num_kv_heads == 0,
         f"num_heads={self.num_heads} must be a multiple of num_kv_heads={self.num_kv_heads}")
    need(self.activation in ACTIVATIONS, f"activation={self.activation!r} not in {ACTIVATIONS}")
    need(self.model_type in MODEL_TYPES, f"model_type={self.model_type!r} not in {MODEL_TYPES}")
    need(self.head_dim % 2 == 0, f"head_dim={self.head_dim} must be even for RoPE")
    need(self.remat_policy in REMAT_POLICIES,
         f"remat_policy={self.remat_policy!r} not in {REMAT_POLICIES}")
    need(self.embed_lookup in EMBED_LOOKUPS,
         f"embed_lookup={self.embed_lookup!r} not in {EMBED_LOOKUPS}")
    object.__setattr__(self, "extra_eos_ids", tuple(int(e) for e in self.extra_eos_ids))
    object.__setattr__(self, "layer_types", tuple(str(t) for t in self.layer_types))
    if self.layer_types:
      need(len(self.layer_types) == self.num_layers,
           f"layer_types has {len(self.layer_types)} entries for num_layers={self.num_layers}")
      bad = sorted(set(self.layer_types) - set(LAYER_TYPES))
      need(not bad, f"layer_types values {bad} not in {LAYER_TYPES}")
    if "sliding_attention" in self.layer_types:
      need(self.sliding_window is not None and int(self.sliding_window) > 0,
           "sliding_attention layers need a positive sliding_window")
    for name in ("attn_softcap", "final_softcap", "query_pre_attn_scalar"):
      v = getattr(self, name)
      need(v is None or float(v) > 0, f"{name} must be positive or None, got {v}")
    for name in ("dtype", "param_dtype"):
      try:
        jnp.dtype(getattr(self, name))
      except TypeError as e:
        raise ValueError(f"ModelConfig: {name}={getattr(self, name)!r} is not a dtype") from e

  @property
  def eos_ids(self) -> tuple:
    """Every end-of-sequence id: `eos_id` first, then `extra_eos_ids` (what the sampler stops
    on by default)."""
    first = () if self.eos_id is None else (int(self.eos_id),)
    return first + tuple(int(e) for e in self.extra_eos_ids if e != self.eos_id)

  def is_local(self, layer: int) -> bool:
    """Whether `layer` is a sliding-window (local) layer: windowed mask, local RoPE base."""
    return bool(self.layer_types) and self.layer_types[layer] == "sliding_attention"

  @property
  def has_local_layers(self) -> bool:
    """Whether some layers use sliding-window attention."""
    return "sliding_attention" in self.layer_types

  @property
  def attn_scale(self) -> float:
    """The query scale: query_pre_attn_scalar (else head_dim) ** -0.5."""
    return float(self.query_pre_attn_scalar or self.head_dim) ** -0.5

  @property
  def compute_dtype(self):
    """The activation dtype."""
    return jnp.dtype(self.dtype)

  @property
  def weight_dtype(self):
    """The parameter dtype."""
    return jnp.dtype(self.param_dtype)

  @property
  def num_groups(self) -> int:
    """Query heads per KV head (1: MHA; num_heads: MQA)."""
    return self.num_heads // self.num_kv_heads

  def replace(self, **kw) -> "ModelConfig":
    """A copy with the given fields changed."""
    return dataclasses.replace(self, **kw)

  def num_params(self) -> int:
    """Parameter count of the backbone from the architecture (embeddings counted once if tied)."""
    e, h, k, d, f = self.embed_dim, self.num_heads, self.num_kv_heads, self.head_dim, self.mlp_dim
    attn = e * h * d * 2 + e * k * d * 2
    attn += (h * d + 2 * k * d) * self.qkv_bias + e * self.o_bias
    mlp = 3 * e * f + (2 * f + e) * self.mlp_bias
    layer = attn + mlp + 2 * e + 2 * e * self.post_norms + 2 * d * self.qk_norm
    emb = self.vocab_size * e * (1 if self.tie_embeddings else 2)
    return self.num_layers * layer + emb + e
