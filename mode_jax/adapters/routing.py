"""Routing weights, auxiliary losses and routing statistics (pure functions, float32).

Shapes: router logits are [..., nb, m] (nb = routed blocks, m = experts); the leading dims are
tokens ([B, T]) for a token router or broadcast rows ([B, 1]) for a task router.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

Array = jax.Array


def gate_weights(logits: Array, top_k: int = 0) -> tuple[Array, Array]:
  """(weights, probs): probs = softmax over experts in float32; weights = probs (dense, the
  paper) or, with top_k > 0, the k largest probs per block renormalised to sum to one (ties at
  the k-th value keep every tied expert)."""
  probs = jax.nn.softmax(logits.astype(jnp.float32), axis=-1)
  if not top_k or top_k >= probs.shape[-1]:
    return probs, probs
  kth = jax.lax.top_k(probs, top_k)[0][..., -1:]
  kept = jnp.where(probs >= kth, probs, 0.0)
  return kept / jnp.sum(kept, axis=-1, keepdims=True), probs


def load_balance_loss(weights: Array, probs: Array) -> Array:
  """Switch-Transformer balancing loss m * sum_i f_i P_i, averaged over blocks.

  f_i: fraction of routing slots (token x chosen expert) that go to expert i; P_i: mean router
  probability of expert i. Equals 1 for perfectly uniform routing, m when one expert takes all.
  """
  m = probs.shape[-1]
  flat_p = probs.reshape(-1, *probs.shape[-2:])                       # [N, nb, m]
  chosen = (weights > 0).astype(jnp.float32).reshape(flat_p.shape)
  f = jnp.sum(chosen, axis=0) / jnp.sum(chosen, axis=(0, 2))[:, None]   # [nb, m]
  p = jnp.mean(flat_p, axis=0)                                          # [nb, m]
  return m * jnp.mean(jnp.sum(f * p, axis=-1))


def z_loss(logits: Array) -> Array:
  """ST-MoE router z-loss: mean over tokens and blocks of logsumexp(logits)^2."""
  return jnp.mean(jax.nn.logsumexp(logits.astype(jnp.float32), axis=-1) ** 2)


def routing_stats(weights: Array, probs: Array, task_ids, num_tasks: int) -> dict:
  """Statistics for logging / heatmaps (sums and counts, so they aggregate across batches):

  expert_weight [nb, m]: mean routing weight per block and expert;
  entropy []: mean entropy (nats) of the router distribution per block;
  task_weight_sum [num_tasks, nb, m] and task_tokens [num_tasks] (when task ids [B] or [B, T]
  are given):
  per-task utilisation = task_weight_sum / task_tokens.
  """
  flat_w = weights.reshape(-1, *weights.shape[-2:])
  flat_p = probs.reshape(flat_w.shape)
  ent = -jnp.sum(flat_p * jnp.log(jnp.maximum(flat_p, 1e-30)), axis=-1)
  out = {"expert_weight": jnp.mean(flat_w, axis=0), "entropy": jnp.mean(ent)}
  if task_ids is not None and num_tasks > 0:
    # One id per row ([B]) or per token ([B, T]); weights [B, T, ...rest, nb, m].
    per_id = weights.reshape(task_ids.shape + (-1,) + weights.shape[-2:])
    onehot = jax.nn.one_hot(task_ids, num_tasks, dtype=jnp.float32)
    flat_oh = onehot.reshape(-1, num_tasks)
    flat_w = per_id.reshape(flat_oh.shape[0], -1, *weights.shape[-2:])
    out["task_weight_sum"] = jnp.einsum("bn,btkm->nkm", flat_oh, flat_w)
    out["task_tokens"] = flat_oh.sum(0) * flat_w.shape[1]
  return out
