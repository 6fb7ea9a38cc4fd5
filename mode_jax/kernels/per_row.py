"""Mixed-task serving: every row of a batch has its own task-level adapter (the S-LoRA / Punica
SGMV idea). y[t] = x[t] W0 + scale * (x[t] A[ids[t]]) B[ids[t]] with x [M, P], W0 [P, Q],
A [T, P, r], B [T, r, Q], ids [M] in [0, T).

A MoDE / MoLoRA adapter with a task router is one such low-rank pair per task: for task t its
term is (x A (.) G_t) B = x (A diag(G_t)) B with G_t the task's constant gates, i.e. rank m r
after merging (`mode_jax.adapters.merge.task_pairs` builds A_t, B_t), so a batch mixing tasks
can be served by this kernel without per-token routing.

`per_row_adapter_matmul` sorts rows by adapter, pads each group to a multiple of block_m (so a
row tile belongs to one adapter; at most min(T, M) extra tiles), runs one fused kernel tile per
(row tile, column tile) with that tile's adapter selected by index, and un-permutes. The TPU
form gets the tile -> adapter table by scalar prefetch (`PrefetchScalarGridSpec`, the megablox
`gmm` pattern: A / B blocks chosen in the index maps); the GPU (Triton) form indexes the
adapter axis of the A / B refs inside the kernel. Forward only (serving).

`reference` gathers A[ids], B[ids] per row (plain jnp); `ragged_reference` is what XLA offers
for the grouped products, `jax.lax.ragged_dot` on the sorted rows (the baseline of the bench).
"""

from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from mode_jax.kernels.adapter_matmul import BACKENDS, BlockSizes, accumulate_step
from mode_jax.kernels.common import next_pow2, pad_to


def reference(x, w0, a, b, ids, *, scale: float = 1.0):
  """Plain-jnp reference: y [T, Q] = x W0 + scale (x A[ids]) B[ids], in float32."""
  f32 = jnp.float32
  x32 = x.astype(f32)
  h = jnp.einsum("tp,tpr->tr", x32, a.astype(f32)[ids])
  y = x32 @ w0.astype(f32) + scale * jnp.einsum("tr,trq->tq", h, b.astype(f32)[ids])
  return y.astype(x.dtype)


def ragged_reference(x, w0, a, b, ids, *, scale: float = 1.0):
  """x W0 + scale * grouped (x A_g) B_g with `jax.lax.ragged_dot` over rows sorted by id."""
  order = jnp.argsort(ids, stable=True)
  sizes = jnp.bincount(ids, length=a.shape[0]).astype(jnp.int32)
  xs = x[order]
  h = jax.lax.ragged_dot(xs, a, sizes, preferred_element_type=jnp.float32)
  d = jax.lax.ragged_dot(h.astype(b.dtype), b, sizes, preferred_element_type=jnp.float32)
  delta = jnp.zeros_like(d).at[order].set(d)
  y = jnp.dot(x, w0, preferred_element_type=jnp.float32) + scale * delta
  return y.astype(x.dtype)


def _group_layout(ids, num_adapters: int, bm: int):
  """(dest row of every input row in the padded layout, tile -> adapter table, padded rows)."""
  m_rows = ids.shape[0]
  n_tiles = -(-m_rows // bm) + min(num_adapters, m_rows)
  order = jnp.argsort(ids, stable=True)
  counts = jnp.bincount(ids, length=num_adapters)
  padded = (counts + bm - 1) // bm * bm
  start_pad = jnp.cumsum(padded) - padded
  start = jnp.cumsum(counts) - counts
  sorted_ids = ids[order]
  dest_sorted = start_pad[sorted_ids] + jnp.arange(m_rows) - start[sorted_ids]
  dest = jnp.zeros((m_rows,), jnp.int32).at[order].set(dest_sorted.astype(jnp.int32))
  ends = jnp.cumsum(padded)
  tile_adapter = jnp.searchsorted(ends, jnp.arange(n_tiles) * bm, side="right")
  return dest, jnp.minimum(tile_adapter, num_adapters - 1).astype(jnp.int32), n_tiles * bm


def _kernel_gpu(tid_ref, x_ref, w_ref, a_ref, b_ref, o_ref, *, bk: int, scale: float):
  t = tid_ref[pl.program_id(0)]
  bm, bn = o_ref.shape
  r = a_ref.shape[2]

  def body(k, carry):
    acc, h = carry
    xs = x_ref[:, pl.ds(k * bk, bk)]
    acc = acc + jnp.dot(xs, w_ref[pl.ds(k * bk, bk), :], preferred_element_type=jnp.float32)
    h = h + jnp.dot(xs, a_ref[t, pl.ds(k * bk, bk), :], preferred_element_type=jnp.float32)
    return acc, h
  acc, h = jax.lax.fori_loop(0, x_ref.shape[1] // bk, body,
                             (jnp.zeros((bm, bn), jnp.float32), jnp.zeros((bm, r), jnp.float32)))
  acc = acc + scale * jnp.dot(h.astype(b_ref.dtype), b_ref[t, :, :],
                              preferred_element_type=jnp.float32)
  o_ref[...] = acc.astype(o_ref.dtype)


def _kernel_tpu(tid_ref, x_ref, w_ref, a_ref, b_ref, o_ref, acc_ref, h_ref, *, scale: float):
  del tid_ref                                        # used by the index maps
  k = accumulate_step(x_ref, w_ref, a_ref[0], acc_ref, h_ref)

  @pl.when(k == pl.num_programs(2) - 1)
  def _():
    out = acc_ref[...] + scale * jnp.dot(h_ref[...].astype(b_ref.dtype), b_ref[0],
                                         preferred_element_type=jnp.float32)
    o_ref[...] = out.astype(o_ref.dtype)


@functools.partial(jax.jit, static_argnames=("scale", "block_sizes", "backend", "interpret"))
def per_row_adapter_matmul(x, w0, a, b, ids, *, scale: float = 1.0,
                           block_sizes: Optional[BlockSizes] = None,
                           backend: Optional[str] = None, interpret: bool = False):
  """y [M, Q] (see module doc); ids int [M]. Out-of-range ids are clamped to [0, T)."""
  backend = backend or ("tpu" if jax.default_backend() == "tpu" else "gpu")
  if backend not in BACKENDS:
    raise ValueError(f"backend {backend!r} is not one of {BACKENDS}")
  m_rows, p_dim = x.shape
  n_ad, _, r = a.shape
  q_dim = w0.shape[1]
  if a.shape[1] != p_dim or b.shape != (n_ad, r, q_dim) or ids.shape != (m_rows,):
    raise ValueError(f"per_row_adapter_matmul: x {x.shape}, W0 {w0.shape}, A {a.shape}, "
                     f"B {b.shape}, ids {ids.shape} do not fit")
  bs = (block_sizes or BlockSizes.default(backend, m_rows)).check(backend)
  bm, bn, bk = bs.block_m, bs.block_n, bs.block_k
  r_pad = max(16, next_pow2(r)) if backend == "gpu" else r
  if r_pad != r:
    a = jnp.pad(a, ((0, 0), (0, 0), (0, r_pad - r)))
    b = jnp.pad(b, ((0, 0), (0, r_pad - r), (0, 0)))
  ids = jnp.clip(ids.astype(jnp.int32), 0, n_ad - 1)
  dest, tile_adapter, rows = _group_layout(ids, n_ad, bm)
  xg = jnp.zeros((rows, p_dim), x.dtype).at[dest].set(x)
  xg = pad_to(xg, 1, bk)
  w0p = pad_to(pad_to(w0, 0, bk), 1, bn)
  ap = pad_to(a, 1, bk)
  bp = pad_to(b, 2, bn)
  pp, qp = xg.shape[1], w0p.shape[1]
  out_shape = jax.ShapeDtypeStruct((rows, qp), x.dtype)
  if backend == "tpu":
    from jax.experimental.pallas import tpu as pltpu
    spec = pltpu.PrefetchScalarGridSpec(
        num_scalar_prefetch=1, grid=(rows // bm, qp // bn, pp // bk),
        in_specs=[pl.BlockSpec((bm, bk), lambda i, j, k, t: (i, k)),
                  pl.BlockSpec((bk, bn), lambda i, j, k, t: (k, j)),
                  pl.BlockSpec((1, bk, r_pad), lambda i, j, k, t: (t[i], k, 0)),
                  pl.BlockSpec((1, r_pad, bn), lambda i, j, k, t: (t[i], 0, j))],
        out_specs=pl.BlockSpec((bm, bn), lambda i, j, k, t: (i, j)),
        scratch_shapes=[pltpu.VMEM((bm, bn), jnp.float32), pltpu.VMEM((bm, r_pad), jnp.float32)])
    y = pl.pallas_call(
        functools.partial(_kernel_tpu, scale=float(scale)), out_shape=out_shape, grid_spec=spec,
        compiler_params=None if interpret else pltpu.CompilerParams(
            dimension_semantics=("parallel", "parallel", "arbitrary")),
        interpret=interpret, name="per_row_adapter_matmul")(tile_adapter, xg, w0p, ap, bp)
  else:
    compiler_params = None
    if not interpret:
      from jax.experimental.pallas import triton as pltr
      compiler_params = pltr.CompilerParams(num_warps=4, num_stages=3)
    n_t = next_pow2(rows // bm)              # Triton blocks have power-of-two shapes
    tile_adapter = jnp.pad(tile_adapter, (0, n_t - rows // bm))
    y = pl.pallas_call(
        functools.partial(_kernel_gpu, bk=bk, scale=float(scale)), out_shape=out_shape,
        grid=(rows // bm, qp // bn),
        in_specs=[pl.BlockSpec((n_t,), lambda i, j: (0,)),
                  pl.BlockSpec((bm, pp), lambda i, j: (i, 0)),
                  pl.BlockSpec((pp, bn), lambda i, j: (0, j)),
                  pl.BlockSpec((n_ad, pp, r_pad), lambda i, j: (0, 0, 0)),
                  pl.BlockSpec((n_ad, r_pad, bn), lambda i, j: (0, 0, j))],
        out_specs=pl.BlockSpec((bm, bn), lambda i, j: (i, j)),
        compiler_params=compiler_params, interpret=interpret,
        name="per_row_adapter_matmul")(tile_adapter, xg, w0p, ap, bp)
  return y[dest, :q_dim]
