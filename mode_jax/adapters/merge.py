"""Folding adapters into the frozen kernels for deployment.

LoRA: W0 + scale * A B^T, exact. Task-routed MoLoRA / MoLoRA-SD / MoDE: the routing weights of a
task are constants g_t = gate(T[t]) [nb, m], so each task gets its own exact merged kernel
  MoDE / -SD:  W_t = W0 + scale * A @ B_eff,  B_eff[j] = sum_i g_t[block(j), i] B[i, j]
  MoLoRA:      W_t = W0 + scale * sum_i g_t[0, i] A_i B_i^T
Token-routed adapters depend on every token's input and cannot be merged (a clear error).
"""

from __future__ import annotations

from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from mode_jax.adapters import routing
from mode_jax.adapters.config import AdapterConfig
from mode_jax.adapters.params import ADAPTER_KEY


def delta_kernel(ad: dict, acfg: AdapterConfig, task_id: Optional[int]) -> jax.Array:
  """scale * the adapter's weight update [*in, *out] in float32 (one layer, unstacked)."""
  A, B = jnp.asarray(ad["A"], jnp.float32), jnp.asarray(ad["B"], jnp.float32)
  if not acfg.routed:
    return acfg.scale * jnp.tensordot(A, B[0], axes=1)
  table = jnp.asarray(ad["task_router"], jnp.float32)
  g, _ = routing.gate_weights(table[task_id], acfg.top_k)                 # [nb, m]
  if acfg.shared_down:
    per_col = jnp.repeat(g.T, acfg.block_size, axis=1)                     # [m, r]
    b_eff = jnp.einsum("mr,mr...->r...", per_col, B)                        # [r, *out]
    return acfg.scale * jnp.tensordot(A, b_eff, axes=1)
  return acfg.scale * jnp.tensordot(A * g[0][:, None], B, axes=2)        # A [*in, m, r]


def _merge_node(node: dict, acfg: AdapterConfig, task_id, path: str) -> dict:
  ad, kernel = node[ADAPTER_KEY], node.get("kernel")
  if kernel is None:
    raise KeyError(f"merge: {path} has an adapter but no kernel")
  extra = 3 if acfg.shared_down else 4
  stacked = ad["A"].ndim + ad["B"].ndim - kernel.ndim - extra
  fn = lambda a: delta_kernel(a, acfg, task_id)
  delta = jax.vmap(fn)(ad) if stacked else fn(ad)
  if delta.shape != kernel.shape:
    raise ValueError(f"merge: {path}: adapter update {delta.shape} != kernel {kernel.shape}")
  out = {k: v for k, v in node.items() if k != ADAPTER_KEY}
  out["kernel"] = (jnp.asarray(kernel, jnp.float32) + delta).astype(kernel.dtype)
  return out


def merge(params, acfg: AdapterConfig, task_id: Optional[int] = None):
  """Base params with every adapter folded into its kernel (adapter leaves removed), for
  `Transformer(cfg)` without an adapter.

  LoRA: one tree. Task-routed methods: the tree for `task_id`, or a list with one tree per task
  when `task_id` is None. Token-routed methods raise ValueError (routing depends on the input).
  """
  if acfg.uses_token_router:
    raise ValueError(
        f"merge: {acfg.describe()} with router={acfg.router!r} cannot be folded into W0: its "
        f"routing weights depend on each token's input. Only LoRA and router='task' adapters "
        f"merge (one kernel per task id).")
  if acfg.routed and task_id is None:
    return [merge(params, acfg, t) for t in range(acfg.num_tasks)]
  if acfg.routed and not 0 <= task_id < acfg.num_tasks:
    raise ValueError(f"merge: task_id {task_id} outside [0, {acfg.num_tasks})")

  def walk(tree, path):
    if not hasattr(tree, "items"):
      return tree
    if ADAPTER_KEY in tree:
      return _merge_node(tree, acfg, task_id, path)
    return {k: walk(v, f"{path}/{k}" if path else k) for k, v in tree.items()}
  return walk(nn.meta.unbox(params), "")
