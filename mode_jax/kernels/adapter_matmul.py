"""Fused adapted projection: y = x W0 + scale * ((x A) (.) G) B in one Pallas kernel.

Shapes (2-D; `adapter_matmul` flattens leading dims): x [M, P], W0 [P, Q] (frozen),
A [P, r] shared down-projection (LoRA, MoLoRA-SD, MoDE) or [P, m r] per-expert (MoLoRA),
B [m r, Q] (expert-major rows: B[i r + c] is row c of expert i), gates [M, nb, m] routing weights
per block of p = r / nb columns (softmax per block over experts, computed by the caller: the
token router, the task table, top-k, are the adapters' `routing`), None for LoRA. With
G[t, i r + c] = gates[t, c // p, i] and H = x A tiled over experts (shared A) or as is,

    y = x W0 + scale * (H (.) G) B.

One output tile [bm, bn] per program: the loop over P reads each x tile once and accumulates
both x W0 and x A while it is resident; the epilogue adds sum_i (h_i (.) G_i) B_i, expert by
expert (expanded gates are read for the tile rows only), and writes the tile once. x A is
recomputed for every output column tile (r / bn extra work; the price of keeping the grid
fully parallel).

Backends (`backend=`, default from `jax.default_backend()`):
- "gpu": Pallas Triton lowering; grid (M/bm, Q/bn), the P loop is a `fori_loop` inside the
  kernel over `pl.ds` slices of the refs. Triton needs power-of-two block dims >= 16 and a dot
  K >= 16, so ranks below 16 are zero-padded (exact).
- "tpu": Mosaic; grid (M/bm, Q/bn, P/bk) with P last ("arbitrary") and f32 VMEM accumulators
  initialised at k = 0 and flushed at the last k (the `pallas/ops/tpu/matmul.py` pattern).
- interpret=True runs either body on any backend (CPU tests run both).
Shapes that are not multiples of the block sizes are zero-padded in the wrapper (exact) and
the output sliced.

Backward: `jax.custom_vjp` with the backward in XLA (an acceptable first step; no Pallas
backward kernels yet): with Z = H (.) G and dZ = scale dy B^T,
dB = scale Z^T dy, dG = dZ (.) H, dH = dZ (.) G (summed over experts for a shared A),
dA = x^T dH, dx = dy W0^T + dH A^T, and dW0 = x^T dy (computed only if something uses it: XLA
drops it when W0 is frozen, as in adapter training). Gradients reach the router through
`gates` (the expansion to G is plain XLA outside the custom_vjp).

`reference(...)` is the plain-jnp version the tests compare against.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Optional

import jax
import jax.numpy as jnp
from jax.experimental import pallas as pl

from mode_jax.kernels.common import next_pow2, pad_to

BACKENDS = ("gpu", "tpu")


@dataclasses.dataclass(frozen=True)
class BlockSizes:
  """Tile sizes of the fused kernel: block_m rows of x, block_n columns of W0, block_k of the
  contraction dim P per step. Validated per backend by `check`."""

  block_m: int = 128
  block_n: int = 128
  block_k: int = 128

  def __post_init__(self):
    for f in ("block_m", "block_n", "block_k"):
      v = getattr(self, f)
      if not isinstance(v, int) or v < 1:
        raise ValueError(f"BlockSizes.{f} must be a positive int, got {v!r}")

  def check(self, backend: str) -> "BlockSizes":
    """`self`, or a ValueError when a block size does not suit `backend` (Triton: powers of two
    >= 16)."""
    if backend == "gpu":
      for f in ("block_m", "block_n", "block_k"):
        v = getattr(self, f)
        if v < 16 or v & (v - 1):
          raise ValueError(f"BlockSizes.{f}={v}: the Triton lowering needs a power of two >= 16")
    elif backend == "tpu":
      if self.block_m % 8 or self.block_n % 128 or self.block_k % 128:
        raise ValueError(f"{self}: Mosaic needs block_m % 8 == 0 and block_n, block_k % 128 == 0")
    return self

  @classmethod
  def default(cls, backend: str, rows: int) -> "BlockSizes":
    """Per-backend defaults; `rows` <= 16 selects the decode shape (few tokens, the kernel is
    bound by reading W0: small block_m, wide block_n / block_k)."""
    decode = rows <= 16
    if backend == "tpu":
      return cls(8, 512, 1024) if decode else cls(256, 512, 512)
    if backend == "gpu":
      return cls(16, 128, 256) if decode else cls(64, 128, 64)
    return cls(16, 64, 64) if decode else cls(64, 64, 64)


@dataclasses.dataclass(frozen=True)
class _Static:
  experts: int
  rank: int            # per-expert rank (after padding)
  shared: bool
  routed: bool
  scale: float
  bs: BlockSizes
  backend: str
  interpret: bool


def expand_gates(gates: jax.Array, rank: int) -> jax.Array:
  """gates [M, nb, m] -> G [M, m r] with G[t, i r + c] = gates[t, c // p, i], p = r / nb."""
  m_rows, nb, m = gates.shape
  g = jnp.swapaxes(gates, 1, 2)                                   # [M, m, nb]
  return jnp.repeat(g, rank // nb, axis=2).reshape(m_rows, m * rank)


def reference(x, w0, a, b, gates=None, *, experts: int = 1, scale: float = 1.0,
              shared_down: bool = True) -> jax.Array:
  """Plain-jnp y = x W0 + scale (H (.) G) B (see module doc), accumulating in float32."""
  f32 = jnp.float32
  r = b.shape[0] // experts
  x32 = x.astype(f32)
  h = x32 @ a.astype(f32)
  hk = jnp.tile(h, (1, experts)) if shared_down else h
  z = hk if gates is None else hk * expand_gates(gates.astype(f32), r)
  y = x32 @ w0.astype(f32) + scale * (z.astype(b.dtype).astype(f32) @ b.astype(f32))
  return y.astype(x.dtype)


# ----------------------------------------------------------------------------------- kernels
def _epilogue(acc, hs, g_ref, b_ref, st: _Static):
  """acc + scale * sum_i (h_i (.) G_i) B_i for one output tile."""
  r = st.rank
  for i in range(st.experts):
    z = hs[0] if st.shared else hs[i]
    if st.routed:
      z = z * g_ref[:, pl.ds(i * r, r)].astype(jnp.float32)
    acc = acc + st.scale * jnp.dot(z.astype(b_ref.dtype), b_ref[pl.ds(i * r, r), :],
                                   preferred_element_type=jnp.float32)
  return acc


def _down_cols(st: _Static) -> list[tuple[int, int]]:
  """(start, width) column slices of A accumulated separately (one, or one per expert)."""
  return [(0, st.rank)] if st.shared else [(i * st.rank, st.rank) for i in range(st.experts)]


def _kernel_loop(x_ref, w_ref, a_ref, *rest, st: _Static):
  """GPU form: grid (M/bm, Q/bn); the P loop runs inside the kernel."""
  g_ref, b_ref, o_ref = rest if st.routed else (None,) + rest
  bk = st.bs.block_k
  cols = _down_cols(st)

  def body(k, carry):
    acc, hs = carry
    xs = x_ref[:, pl.ds(k * bk, bk)]
    acc = acc + jnp.dot(xs, w_ref[pl.ds(k * bk, bk), :], preferred_element_type=jnp.float32)
    hs = tuple(h + jnp.dot(xs, a_ref[pl.ds(k * bk, bk), pl.ds(c, w)],
                           preferred_element_type=jnp.float32) for h, (c, w) in zip(hs, cols))
    return acc, hs

  bm, bn = o_ref.shape
  init = (jnp.zeros((bm, bn), jnp.float32),
          tuple(jnp.zeros((bm, w), jnp.float32) for _, w in cols))
  acc, hs = jax.lax.fori_loop(0, x_ref.shape[1] // bk, body, init)
  o_ref[...] = _epilogue(acc, hs, g_ref, b_ref, st).astype(o_ref.dtype)


def accumulate_step(x_ref, w_ref, a_block, acc_ref, h_ref):
  """One P step of the TPU (grid) form: zero the f32 accumulators at the first step, then add
  x W0 and x A for the resident x tile. Returns the step index k."""
  k = pl.program_id(2)

  @pl.when(k == 0)
  def _():
    acc_ref[...] = jnp.zeros_like(acc_ref)
    h_ref[...] = jnp.zeros_like(h_ref)

  xs = x_ref[...]
  acc_ref[...] += jnp.dot(xs, w_ref[...], preferred_element_type=jnp.float32)
  h_ref[...] += jnp.dot(xs, a_block, preferred_element_type=jnp.float32)
  return k


def _kernel_grid(x_ref, w_ref, a_ref, *rest, st: _Static):
  """TPU form: grid (M/bm, Q/bn, P/bk), f32 accumulators in VMEM scratch."""
  if st.routed:
    g_ref, b_ref, o_ref, acc_ref, h_ref = rest
  else:
    g_ref, (b_ref, o_ref, acc_ref, h_ref) = None, rest
  k = accumulate_step(x_ref, w_ref, a_ref[...], acc_ref, h_ref)

  @pl.when(k == pl.num_programs(2) - 1)
  def _():
    hs = [h_ref[:, pl.ds(c, w)] for c, w in _down_cols(st)]
    o_ref[...] = _epilogue(acc_ref[...], hs, g_ref, b_ref, st).astype(o_ref.dtype)


def _pallas_forward(x, w0, a, b, g, st: _Static):
  m_rows, p_dim = x.shape
  q_dim = w0.shape[1]
  bm, bn, bk = st.bs.block_m, st.bs.block_n, st.bs.block_k
  ra, kk = a.shape[1], b.shape[0]
  out_shape = jax.ShapeDtypeStruct((m_rows, q_dim), x.dtype)
  args = [x, w0, a] + ([g] if st.routed else []) + [b]
  if st.backend == "tpu":
    from jax.experimental.pallas import tpu as pltpu
    in_specs = [pl.BlockSpec((bm, bk), lambda i, j, k: (i, k)),
                pl.BlockSpec((bk, bn), lambda i, j, k: (k, j)),
                pl.BlockSpec((bk, ra), lambda i, j, k: (k, 0))]
    if st.routed:
      in_specs.append(pl.BlockSpec((bm, kk), lambda i, j, k: (i, 0)))
    in_specs.append(pl.BlockSpec((kk, bn), lambda i, j, k: (0, j)))
    return pl.pallas_call(
        functools.partial(_kernel_grid, st=st), out_shape=out_shape,
        grid=(m_rows // bm, q_dim // bn, p_dim // bk), in_specs=in_specs,
        out_specs=pl.BlockSpec((bm, bn), lambda i, j, k: (i, j)),
        scratch_shapes=[pltpu.VMEM((bm, bn), jnp.float32), pltpu.VMEM((bm, ra), jnp.float32)],
        compiler_params=None if st.interpret else pltpu.CompilerParams(
            dimension_semantics=("parallel", "parallel", "arbitrary")),
        interpret=st.interpret, name="fused_adapter_matmul")(*args)
  in_specs = [pl.BlockSpec((bm, p_dim), lambda i, j: (i, 0)),
              pl.BlockSpec((p_dim, bn), lambda i, j: (0, j)),
              pl.BlockSpec((p_dim, ra), lambda i, j: (0, 0))]
  if st.routed:
    in_specs.append(pl.BlockSpec((bm, kk), lambda i, j: (i, 0)))
  in_specs.append(pl.BlockSpec((kk, bn), lambda i, j: (0, j)))
  compiler_params = None
  if not st.interpret:
    from jax.experimental.pallas import triton as pltr
    compiler_params = pltr.CompilerParams(num_warps=4, num_stages=3)
  return pl.pallas_call(
      functools.partial(_kernel_loop, st=st), out_shape=out_shape,
      grid=(m_rows // bm, q_dim // bn), in_specs=in_specs,
      out_specs=pl.BlockSpec((bm, bn), lambda i, j: (i, j)),
      compiler_params=compiler_params, interpret=st.interpret,
      name="fused_adapter_matmul")(*args)


# ----------------------------------------------------------------------------- custom VJP
@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _fused(x, w0, a, b, g, st: _Static):
  return _pallas_forward(x, w0, a, b, g, st)


def _fused_fwd(x, w0, a, b, g, st):
  return _pallas_forward(x, w0, a, b, g, st), (x, w0, a, b, g)


def _fused_bwd(st, res, dy):
  x, w0, a, b, g = res
  f32 = jnp.float32
  m, r = st.experts, st.rank
  dy32 = dy.astype(f32)
  h = jnp.dot(x.astype(f32), a.astype(f32))                        # [M, r] or [M, m r]
  hk = jnp.tile(h, (1, m)) if st.shared else h
  g32 = g.astype(f32) if st.routed else None
  z = hk if g32 is None else hk * g32
  dz = st.scale * jnp.dot(dy32, b.astype(f32).T)                   # [M, m r]
  db = st.scale * jnp.dot(z.T, dy32)
  dhk = dz if g32 is None else dz * g32
  dh = dhk.reshape(-1, m, r).sum(1) if st.shared else dhk
  dx = jnp.dot(dy32, w0.astype(f32).T) + jnp.dot(dh, a.astype(f32).T)
  da = jnp.dot(x.astype(f32).T, dh)
  dw0 = jnp.dot(x.astype(f32).T, dy32)
  dg = (dz * hk).astype(g.dtype) if st.routed else g
  return (dx.astype(x.dtype), dw0.astype(w0.dtype), da.astype(a.dtype), db.astype(b.dtype), dg)


_fused.defvjp(_fused_fwd, _fused_bwd)


# ----------------------------------------------------------------------------- public API
def _pad_rank(a, b, g, experts: int, shared: bool, r: int, r_pad: int):
  """Zero-pad every expert's rank r -> r_pad (exact: padded columns of A and rows of B are 0)."""
  if r_pad == r:
    return a, b, g
  pad = r_pad - r
  b = jnp.pad(b.reshape(experts, r, -1), ((0, 0), (0, pad), (0, 0))).reshape(experts * r_pad, -1)
  if shared:
    a = jnp.pad(a, ((0, 0), (0, pad)))
  else:
    a = jnp.pad(a.reshape(a.shape[0], experts, r), ((0, 0), (0, 0), (0, pad)))
    a = a.reshape(a.shape[0], experts * r_pad)
  if g is not None:
    g = jnp.pad(g.reshape(g.shape[0], experts, r), ((0, 0), (0, 0), (0, pad)))
    g = g.reshape(g.shape[0], experts * r_pad)
  return a, b, g


@functools.partial(jax.jit, static_argnames=("experts", "scale", "shared_down", "block_sizes",
                                             "backend", "interpret"))
def adapter_matmul(x, w0, a, b, gates=None, *, experts: int = 1, scale: float = 1.0,
                   shared_down: bool = True, block_sizes: Optional[BlockSizes] = None,
                   backend: Optional[str] = None, interpret: bool = False) -> jax.Array:
  """y = x W0 + scale * (H (.) G) B for x [..., P] (see module doc); returns [..., Q] in x.dtype.

  gates: [..., nb, m] routing weights (None: LoRA, all ones). block_sizes: BlockSizes (default
  per backend and row count). backend: "gpu" | "tpu" (default: the default JAX backend; on CPU
  the GPU form, which needs interpret=True).
  """
  backend = backend or ("tpu" if jax.default_backend() == "tpu" else "gpu")
  if backend not in BACKENDS:
    raise ValueError(f"backend {backend!r} is not one of {BACKENDS}")
  lead, p_dim = x.shape[:-1], x.shape[-1]
  q_dim = w0.shape[1]
  x2 = x.reshape(-1, p_dim)
  m_rows = x2.shape[0]
  if w0.shape[0] != p_dim or b.shape[1] != q_dim or b.shape[0] % experts:
    raise ValueError(f"adapter_matmul: x {x.shape}, W0 {w0.shape}, A {a.shape}, B {b.shape} "
                     f"do not fit (B needs experts*r = {experts}*r rows)")
  r = b.shape[0] // experts
  if a.shape != (p_dim, r if shared_down else experts * r):
    raise ValueError(f"adapter_matmul: A {a.shape} should be {(p_dim, r)} (shared) or "
                     f"{(p_dim, experts * r)} (per expert)")
  g = None
  if gates is not None:
    gates = gates.reshape(m_rows, *gates.shape[-2:])
    if gates.shape[-1] != experts or r % gates.shape[-2]:
      raise ValueError(f"adapter_matmul: gates {gates.shape} should be [..., nb, {experts}] "
                       f"with nb dividing r={r}")
    g = expand_gates(gates.astype(jnp.float32), r)
  bs = (block_sizes or BlockSizes.default(backend, m_rows)).check(backend)
  r_pad = max(16, next_pow2(r)) if backend == "gpu" else r
  a, b, g = _pad_rank(a, b, g, experts, shared_down, r, r_pad)
  xp = pad_to(pad_to(x2, 0, bs.block_m), 1, bs.block_k)
  w0p = pad_to(pad_to(w0, 0, bs.block_k), 1, bs.block_n)
  ap = pad_to(a, 0, bs.block_k)
  bp = pad_to(b, 1, bs.block_n)
  gp = None if g is None else pad_to(g, 0, bs.block_m)
  st = _Static(experts, r_pad, shared_down, g is not None, float(scale), bs, backend, interpret)
  y = _fused(xp, w0p, ap, bp, gp, st)[:m_rows, :q_dim]
  return y.reshape(*lead, q_dim)
