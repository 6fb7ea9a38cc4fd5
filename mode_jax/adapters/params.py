"""Adapter parameters as part of the model's tree: counting, masks, split/combine, initialisation.

Adapter leaves live under a sub-module named "adapter" inside each wrapped projection, e.g.
`layers_3/attn/q/adapter/{A, B, router}` (or stacked under `layers/...` with scan_layers), so
the base checkpoint's paths are untouched and an adapter tree applies to a base tree by path.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from mode_jax.adapters.config import AdapterConfig
from mode_jax.model.config import ModelConfig
from mode_jax.model.transformer import Transformer

ADAPTER_KEY = "adapter"


def matrix_dims(cfg: ModelConfig, target: str) -> tuple[int, int]:
  """(P, Q) of projection `target` (input and output dims of its flattened kernel)."""
  e, f = cfg.embed_dim, cfg.mlp_dim
  q, kv = cfg.num_heads * cfg.head_dim, cfg.num_kv_heads * cfg.head_dim
  return {"q": (e, q), "k": (e, kv), "v": (e, kv), "o": (q, e),
          "gate": (e, f), "up": (e, f), "down": (f, e)}[target]


def matrix_params(acfg: AdapterConfig, big_p: int, big_q: int) -> int:
  """Added parameters of one adapted P x Q matrix, by the paper's formulas (+ task table)."""
  m, r, nb = acfg.experts, acfg.rank, acfg.num_blocks
  n = {"lora": r * (big_p + big_q),
       "molora": m * r * (big_p + big_q),
       "molora_sd": big_p * r + m * r * big_q,
       "mode": big_p * r + m * r * big_q}[acfg.method]
  if acfg.uses_token_router:
    n += big_p * m * nb           # W_R: P m (MoLoRA, -SD: one block), P m r/p (MoDE)
  if acfg.uses_task_router:
    n += acfg.num_tasks * nb * m
  return n


def count_params(cfg: ModelConfig, acfg: AdapterConfig) -> int:
  """Total parameters `Transformer(cfg, adapter=acfg)` adds to the base, from the formulas."""
  per_layer = sum(matrix_params(acfg, *matrix_dims(cfg, t)) for t in acfg.targets)
  return cfg.num_layers * per_layer


def lora_rank_for_budget(cfg: ModelConfig, targets, copies: int, budget: int) -> int:
  """The LoRA rank on `targets` whose `copies` adapters (one per task) come closest to
  `budget` added parameters."""
  return min(range(1, 257), key=lambda r: abs(copies * count_params(
      cfg, AdapterConfig("lora", rank=r, targets=tuple(targets))) - budget))


def flatten(tree, sep: str = "/") -> dict:
  """{"layers_0/attn/q/adapter/A": leaf, ...}: the leaves of a nested dict by joined path (the
  tensor names of the project's safetensors files). Inverse: `unflatten`."""
  out = {}
  for k, v in tree.items():
    if hasattr(v, "items"):
      out.update({f"{k}{sep}{kk}": vv for kk, vv in flatten(v, sep).items()})
    else:
      out[k] = v
  return out


def unflatten(flat, sep: str = "/") -> dict:
  """The nested dict of `flatten`'s output (or of any (path, leaf) pairs / mapping)."""
  tree: dict = {}
  for name, leaf in (flat.items() if hasattr(flat, "items") else flat):
    node = tree
    *parents, last = name.split(sep)
    for p in parents:
      node = node.setdefault(p, {})
    node[last] = leaf
  return tree


def is_adapter_path(path) -> bool:
  """Whether a tree path (of `tree_flatten_with_path`) goes through an "adapter" key."""
  return any(getattr(k, "key", k) == ADAPTER_KEY for k in path)


def trainable_mask(params) -> Any:
  """Same-structure pytree of bools: True on adapter (and router) leaves, False on the base.

  Use with `optax.masked` or `optax.multi_transform`; `split` is the cheaper alternative that
  keeps the base out of the optimizer state entirely."""
  return jax.tree_util.tree_map_with_path(lambda p, _: is_adapter_path(p), params)


def _unfreeze(tree):
  return {k: _unfreeze(v) for k, v in tree.items()} if hasattr(tree, "items") else tree


def _empty(t) -> bool:
  return t is None or (isinstance(t, dict) and not t)


def split(params) -> tuple[dict, dict]:
  """(base, adapter): two nested dicts that partition the leaves; empty sub-trees are dropped."""
  def walk(tree, inside):
    if not hasattr(tree, "items"):
      return (None, tree) if inside else (tree, None)
    base, ad = {}, {}
    for k, v in tree.items():
      b, a = walk(v, inside or k == ADAPTER_KEY)
      if not _empty(b):
        base[k] = b
      if not _empty(a):
        ad[k] = a
    return base, ad
  return walk(_unfreeze(params), False)


def combine(base, adapter, *, where: str = "adapter params") -> dict:
  """Inverse of `split`: attaches adapter leaves to a base tree by path.

  Raises KeyError naming the first adapter path whose parent module is not in the base (e.g. an
  adapter trained on another architecture), and ValueError if a path would overwrite a base leaf.
  """
  def walk(b, a, path):
    out = dict(b)
    for k, v in a.items():
      here = path + (k,)
      if k == ADAPTER_KEY:
        if k in out:
          raise ValueError(f"{where}: {'/'.join(here)} already exists in the base params")
        out[k] = v
        continue
      if k not in out or not hasattr(out[k], "items"):
        raise KeyError(f"{where}: {'/'.join(here)} has no matching module in the base params "
                       f"(base has {sorted(b)[:8]}...)")
      out[k] = walk(out[k], v, here)
    return out
  return walk(_unfreeze(base), _unfreeze(adapter), ())


def count_leaves(tree) -> int:
  """Total number of elements over the leaves of `tree`."""
  return int(sum(np.prod(np.shape(x)) for x in jax.tree.leaves(tree)))


def param_report(params, name: str = "", full: bool = False) -> dict:
  """Trainable (adapter) / frozen (base) parameter counts and the paper's "% added params"
  (adapter / base). For a model without adapters, or with `full=True`, everything is trainable
  (full fine-tuning)."""
  base, ad = split(nn.meta.unbox(params))
  n_base, n_ad = count_leaves(base), count_leaves(ad)
  if n_ad == 0 or full:
    n = n_base + n_ad
    return {"trainable": n, "frozen": 0, "added_pct": 0.0,
            "line": f"{name or 'full fine-tuning'}: trainable {n:,} (all parameters)"}
  pct = 100.0 * n_ad / n_base
  return {"trainable": n_ad, "frozen": n_base, "added_pct": pct,
          "line": f"{name or 'adapter'}: trainable {n_ad:,} / frozen {n_base:,} "
                  f"({pct:.2f}% added params)"}


def init_adapter(cfg: ModelConfig, acfg: AdapterConfig, rng, *, seq_len: int = 8) -> dict:
  """Initialised adapter leaves only (boxed with logical axis names), for attaching to a loaded
  base checkpoint. Runs `init` of the adapted model under jit and returns only the adapter
  part, so XLA drops the base weights' random initialisation (cheap even for 8B models)."""
  model = Transformer(cfg, adapter=acfg)
  tokens = jnp.zeros((1, seq_len), jnp.int32)
  task_ids = jnp.zeros((1,), jnp.int32) if acfg.uses_task_router else None

  def init(key):
    return split(model.init(key, tokens, task_ids=task_ids)["params"])[1]
  return jax.jit(init)(rng)
