"""Folding adapters into the frozen kernels for deployment, and their per-task low-rank pairs.

LoRA: W0 + scale * A B^T, exact. Task-routed MoLoRA / MoLoRA-SD / MoDE: the routing weights of a
task are constants g_t = gate(T[t]) [nb, m], so each task t is one low-rank pair of rank m r
(`task_pairs`, the only place task gates are built):
  A_t = [A g_t[block(0), 0], ..., A g_t[block(j), i], ...]  [P, m r]  (A tiled m times for
        MoDE / -SD, the m per-expert A_i side by side for MoLoRA, column (i, j) scaled by the gate)
  B_t = B.reshape(m r, Q)
and the merged kernel is W_t = W0 + scale * A_t B_t (`merge`), or the pair serves a batch mixing
tasks without merging (`kernels.per_row.per_row_adapter_matmul`).
Token-routed adapters depend on every token's input and cannot be merged (a clear error).
"""

from __future__ import annotations

import math
from typing import Optional

import flax.linen as nn
import jax
import jax.numpy as jnp

from mode_jax.adapters import routing
from mode_jax.adapters.config import AdapterConfig
from mode_jax.adapters.params import ADAPTER_KEY
from mode_jax.kernels.adapter_matmul import expand_gates


def task_pairs(ad: dict, acfg: AdapterConfig) -> tuple[jax.Array, jax.Array]:
  """Per-task low-rank pairs of one task-routed adapter (one layer, unstacked).

  Args:
    ad: the adapter's leaves {"A": [*in, r] or [*in, m, r] (MoLoRA), "B": [m, r, *out],
      "task_router": [T, nb, m]}.
    acfg: its config (a routed method with a task table).

  Returns:
    (A_t [T, P, m r], B_t [T, m r, Q]) in the dtype of A / B, P = prod(in), Q = prod(out), with
    scale * x A_t[t] B_t[t] equal to the adapter's term for task t.
  """
  A, B = ad["A"], ad["B"]
  m, r = acfg.experts, acfg.rank
  n_in = A.ndim - (1 if acfg.shared_down else 2)
  big_p = math.prod(A.shape[:n_in])
  b_flat = B.reshape(m * r, -1)                                          # [m r, Q]
  a_rep = (jnp.tile(A.reshape(big_p, r), (1, m)) if acfg.shared_down
           else A.reshape(big_p, m * r))                                 # [P, m r], (i, j)
  gates, _ = routing.gate_weights(jnp.asarray(ad["task_router"], jnp.float32), acfg.top_k)
  g = expand_gates(gates, r)                                             # [T, m r]
  a_t = a_rep[None].astype(jnp.float32) * g[:, None, :]
  return a_t.astype(A.dtype), jnp.broadcast_to(b_flat, (g.shape[0],) + b_flat.shape)


def delta_kernel(ad: dict, acfg: AdapterConfig, task_id: Optional[int]) -> jax.Array:
  """scale * the adapter's weight update [*in, *out] in float32 (one layer, unstacked)."""
  A, B = jnp.asarray(ad["A"], jnp.float32), jnp.asarray(ad["B"], jnp.float32)
  if not acfg.routed:
    return acfg.scale * jnp.tensordot(A, B[0], axes=1)
  f32 = {k: jnp.asarray(v, jnp.float32) for k, v in ad.items()}
  a_t, b_t = task_pairs(f32, acfg)
  in_shape = A.shape[:A.ndim - (1 if acfg.shared_down else 2)]
  return (acfg.scale * (a_t[task_id] @ b_t[task_id])).reshape(in_shape + B.shape[2:])


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
