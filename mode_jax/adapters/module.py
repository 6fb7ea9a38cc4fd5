"""`Adapter`: the Linen module that computes an adapted projection, x W0 + the adapter term.

`AdapterConfig.projection_module` builds it for every projection the config targets (the
model's `injection.ProjectionAdapter` contract): it is called with the frozen kernel W0 and always
returns x W0 + term, whichever `impl` computes it (dense XLA ops, the naive reference loop, or
the fused Pallas kernel).

Parameter layout (input dims `*in` and output dims `*out` are the wrapped kernel's, so adapters
shard with the same logical axis names as their base weight):

  A            [*in, r]       shared down-projection (LoRA, MoLoRA-SD, MoDE)
               [*in, m, r]    per-expert down-projections (MoLoRA)
  B            [m, r, *out]   up-projections, B[i, k*p:(k+1)*p] = (B_k^i)^T (m = 1 for LoRA)
  router       [*in, nb, m]   token router W_R (nb = r/p blocks), no bias
  task_router  [num_tasks, nb, m]   task routing table

Computation (no loops over experts or blocks, no gathers):
  h = x A                                  [..., (m,) r]
  g = softmax(x W_R (+ T[task])) in f32    [..., nb, m]
  z[..., i, k, :] = g[..., k, i] * h[..., k-th block]   (one broadcasted product)
  out = scale * z.reshape(..., m*r) B.reshape(m*r, Q)    (one matmul)
"""

from __future__ import annotations

import math
from typing import Any, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax.core import meta as flax_meta
from jax.sharding import PartitionSpec as P

from mode_jax.adapters import reference, routing
from mode_jax.kernels import adapter_matmul as K

Array = jax.Array


def _down_init(acfg, fan_in: int):
  if acfg.init == "kaiming_uniform":   # PEFT: kaiming_uniform_(a=sqrt(5)) -> U(+-1/sqrt(fan_in))
    return _sym_uniform(1.0 / math.sqrt(fan_in))
  return nn.initializers.normal(stddev=acfg.init_std)


def _sym_uniform(bound: float):
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -bound, bound)
  return init


def _expand_to(t: Array, ndim: int) -> Array:
  """[B, (T,) nb, m] -> [B, (T,) 1, ..., nb, m] with `ndim - 1` unit dims, so per-row (or
  per-token) values broadcast over the remaining leading dims of x."""
  k = t.ndim - 2
  return t.reshape(t.shape[:k] + (1,) * (ndim - 1) + t.shape[k:])


class Adapter(nn.Module):
  """One adapted projection: x W0 + the adapter term (in `dtype`).

  Attributes:
    acfg: the `AdapterConfig` (not imported here: the config builds this module).
    out_shape / in_axes / out_axes: the wrapped kernel's output dims and logical axis names.
  """

  acfg: Any
  out_shape: Sequence[int]
  in_axes: Sequence[str]
  out_axes: Sequence[str]
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: Array, base_kernel: Array, task_ids: Optional[Array] = None) -> Array:
    """x W0 + the adapter term.

    Args:
      x: [..., *in] inputs.
      base_kernel: W0 [*in, *out], the frozen kernel of the projection.
      task_ids: int [B] (one task per row) or [B, T] (per token); needed by task routers.

    Returns:
      [..., *out] in `dtype`.
    """
    a = self.acfg
    n_in = len(self.in_axes)
    in_shape = tuple(x.shape[x.ndim - n_in:])
    lead = x.shape[:x.ndim - n_in]
    fan_in = math.prod(in_shape)
    m, r, nb, p = a.experts, a.rank, a.num_blocks, a.block_size
    pdt, dt = jnp.dtype(a.param_dtype), self.dtype
    part = nn.with_logical_partitioning
    in_axes, out_axes = tuple(self.in_axes), tuple(self.out_axes)

    if a.shared_down:
      A = self.param("A", part(_down_init(a, fan_in), in_axes + ("adapter_rank",)),
                     in_shape + (r,), pdt)
    else:
      A = self.param("A", part(_down_init(a, fan_in),
                               in_axes + ("adapter_experts", "adapter_rank")),
                     in_shape + (m, r), pdt)
    B = self.param("B", part(nn.initializers.zeros,
                             ("adapter_experts", "adapter_rank") + out_axes),
                   (m, r) + tuple(self.out_shape), pdt)
    params = {"A": A, "B": B}

    logits = None
    if a.uses_token_router:
      w_r = self.param("router", part(nn.initializers.normal(a.router_init_std / math.sqrt(fan_in)),
                                      in_axes + ("adapter_blocks", "adapter_experts")),
                       in_shape + (nb, m), pdt)
      params["router"] = w_r
      logits = jnp.tensordot(x.astype(dt), w_r.astype(dt), axes=n_in,
                             preferred_element_type=jnp.float32)
    if a.uses_task_router:
      table = self.param("task_router", part(nn.initializers.normal(a.router_init_std),
                                             ("adapter_tasks", "adapter_blocks",
                                              "adapter_experts")),
                         (a.num_tasks, nb, m), pdt)
      params["task_router"] = table
      if task_ids is None:
        raise ValueError(f"adapter router={a.router!r} needs task_ids [batch]; pass "
                         f"Transformer.apply(..., task_ids=...)")
      # task_ids [B] (one task per row) or [B, T] (per token: packed rows mixing tasks).
      onehot = jax.nn.one_hot(task_ids, a.num_tasks, dtype=jnp.float32)
      rows = _expand_to(jnp.einsum("...n,nkm->...km", onehot, table.astype(jnp.float32)),
                        len(lead) - task_ids.ndim + 1)
      logits = rows if logits is None else logits + rows

    if a.impl == "naive":   # deliberately slow; benchmarks and tests only
      return self._base(x, base_kernel) + reference.naive_delta(
          x, params, a, task_ids, n_in=n_in).astype(dt)

    weights = None
    if a.routed:
      weights, probs = routing.gate_weights(logits, a.top_k)    # [..., nb, m] float32
      self._sow_routing(logits, weights, probs, task_ids, lead)

    if a.impl == "pallas":   # one kernel computes x W0 and the term together
      if weights is not None:
        weights = jnp.broadcast_to(weights, tuple(lead) + weights.shape[-2:])
      return self._fused(x, base_kernel, A, B, weights, lead, fan_in).astype(dt)

    h = jnp.tensordot(x.astype(dt), A.astype(dt), axes=n_in)   # [..., r] or [..., m, r]
    if not a.routed:
      return self._base(x, base_kernel) + a.scale * jnp.tensordot(h, B[0].astype(dt), axes=1)

    hb = h.reshape(h.shape[:-1] + (nb, p))                       # [..., (m,) nb, p]
    if a.shared_down:
      hb = hb[..., None, :, :]                                   # [..., 1, nb, p]
    z = jnp.swapaxes(weights, -1, -2).astype(dt)[..., None] * hb  # [..., m, nb, p]
    z = z.reshape(z.shape[:-3] + (m, r))
    return self._base(x, base_kernel) + a.scale * jnp.tensordot(z, B.astype(dt), axes=2)

  def _base(self, x, w0):
    """x W0 in `dtype` (the frozen projection)."""
    dt = self.dtype
    return jnp.tensordot(x.astype(dt), w0.astype(dt), axes=len(self.in_axes))

  def _fused(self, x, w0, A, B, weights, lead, fan_in):
    a, dt = self.acfg, self.dtype
    q = math.prod(self.out_shape)
    interpret = (jax.default_backend() == "cpu" if a.kernel_interpret is None
                 else a.kernel_interpret)
    bs = K.BlockSizes(*a.kernel_block_sizes) if a.kernel_block_sizes else None

    def kernel(x, w0, A, B, weights):
      return K.adapter_matmul(x, w0, A, B, weights, experts=a.experts, scale=float(a.scale),
                              shared_down=a.shared_down, block_sizes=bs, interpret=interpret)
    args = (x.astype(dt).reshape(*lead, fan_in), w0.astype(dt).reshape(fan_in, q),
            A.astype(dt).reshape(fan_in, -1), B.astype(dt).reshape(a.experts * a.rank, q),
            weights)
    y = sharded_kernel_call(kernel, args, self.out_axes, self.out_shape)
    return y.reshape(*lead, *self.out_shape)

  def _sow_routing(self, logits, weights, probs, task_ids, lead):
    a = self.acfg
    if self.is_mutable_collection("aux_loss"):
      if a.top_k and a.load_balance_weight and a.uses_token_router:
        self.sow("aux_loss", "load_balance",
                 a.load_balance_weight * routing.load_balance_loss(weights, probs))
      if a.z_loss_weight and a.uses_token_router:
        self.sow("aux_loss", "z_loss", a.z_loss_weight * routing.z_loss(logits))
    if self.is_mutable_collection("routing"):
      shape = tuple(lead) + weights.shape[-2:]
      stats = routing.routing_stats(jnp.broadcast_to(weights, shape),
                                    jnp.broadcast_to(probs, shape), task_ids, a.num_tasks)
      for name, value in stats.items():
        self.sow("routing", name, value)


def sharded_kernel_call(kernel, args, out_axes, out_shape):
  """`kernel(x, w0, A, B, weights)` -> y [*lead, Q], inside `jax.shard_map` when a mesh of more
  than one device is active (`train.partitioning.activate`), since Mosaic (TPU) cannot
  auto-partition a Pallas call over several chips. Each device runs the kernel on its rows (the
  leading dim of x sharded like "batch"), with W0 / B column-split like the projection's first
  output axis where the mesh divides it, and A and the kernel's inner dims whole (shard_map
  gathers FSDP-sharded weights, as XLA does for the dense path). Single device or no mesh: the
  plain call."""
  mesh = flax_meta.get_global_mesh()
  if mesh is None or mesh.size == 1:
    return kernel(*args)
  x, w0, A, B, weights = args
  rules = nn.get_logical_axis_rules()
  batch = nn.logical_to_mesh_axes(("batch",), rules)[0]
  batch_axes = () if batch is None else (batch if isinstance(batch, tuple) else (batch,))
  n_batch = math.prod(mesh.shape[ax] for ax in batch_axes)
  row = batch if batch_axes and x.shape[0] % n_batch == 0 else None
  col = nn.logical_to_mesh_axes((out_axes[0],), rules)[0] if out_axes else None
  col_axes = () if col is None else (col if isinstance(col, tuple) else (col,))
  if (any(ax in batch_axes for ax in col_axes)
      or out_shape[0] % max(1, math.prod(mesh.shape[ax] for ax in col_axes))):
    col = None
  lead_rest = (None,) * (x.ndim - 2)
  x_spec = P(row, *lead_rest, None)
  specs = (x_spec, P(None, col), P(None, None), P(None, col))
  out_spec = P(row, *lead_rest, col)
  if weights is None:
    fn = lambda x, w0, A, B: kernel(x, w0, A, B, None)
    return jax.shard_map(fn, mesh=mesh, in_specs=specs, out_specs=out_spec,
                         check_vma=False)(x, w0, A, B)
  w_spec = P(row, *lead_rest, None, None)
  return jax.shard_map(kernel, mesh=mesh, in_specs=specs + (w_spec,), out_specs=out_spec,
                       check_vma=False)(x, w0, A, B, weights)
