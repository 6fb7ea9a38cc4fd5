"""Deliberately naive reference: the paper's sums written as Python loops over blocks and experts.

    delta(x) = scale * sum_k sum_i R_k^i(x) (x A_k) (B_k^i)^T

It re-derives the routing from the raw parameters (its own per-block softmax), shares nothing
with `module.py` but the parameter layout, and is what the tests check the dense implementation
against. `AdapterConfig(impl="naive")` runs it inside the model for the benchmark.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp



def naive_delta(x, params: dict, acfg, task_ids=None, *, n_in: int = 1):
  """x [..., *in]; params {"A", "B", optional "router", "task_router"} as stored by `Adapter`;
  acfg an `AdapterConfig`. Returns the adapter term [..., *out] (without x W0)."""
  if acfg.top_k:
    raise ValueError("the naive reference implements the paper's dense routing only (top_k=0)")
  lead, in_shape = x.shape[:x.ndim - n_in], x.shape[x.ndim - n_in:]
  m, r, nb, p = acfg.experts, acfg.rank, acfg.num_blocks, acfg.block_size
  big_p = math.prod(in_shape)
  xf = x.reshape(-1, big_p)
  n = xf.shape[0]
  B = params["B"]
  out_shape = B.shape[2:]
  bf = B.reshape(m, r, -1).astype(xf.dtype)
  A = params["A"].astype(xf.dtype)
  A = A.reshape(big_p, r) if acfg.shared_down else A.reshape(big_p, m, r)

  logits = [jnp.zeros((n, m), jnp.float32) for _ in range(nb)]
  if acfg.uses_token_router:
    w_r = params["router"].reshape(big_p, nb, m).astype(xf.dtype)
    for k in range(nb):
      logits[k] = logits[k] + (xf @ w_r[:, k, :]).astype(jnp.float32)
  if acfg.uses_task_router:
    ids = task_ids.reshape(-1)                     # per row [B] or per token [B, T]
    per_id = n // ids.shape[0]
    table = params["task_router"].astype(jnp.float32)
    for k in range(nb):
      rows = jnp.stack([table[ids[j], k] for j in range(ids.shape[0])])
      logits[k] = logits[k] + jnp.repeat(rows, per_id, axis=0)

  out = jnp.zeros((n, bf.shape[-1]), xf.dtype)
  for k in range(nb):
    cols = slice(k * p, (k + 1) * p)
    gate = jax.nn.softmax(logits[k], axis=-1) if acfg.routed else jnp.ones((n, 1))
    for i in range(m):
      a_k = A[:, cols] if acfg.shared_down else A[:, i, cols]
      out = out + gate[:, i:i + 1].astype(xf.dtype) * ((xf @ a_k) @ bf[i, cols, :])
  return acfg.scale * out.reshape(tuple(lead) + tuple(out_shape))
