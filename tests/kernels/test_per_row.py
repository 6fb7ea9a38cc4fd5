"""Per-row (mixed-task) adapter kernel vs a gather reference and `jax.lax.ragged_dot`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import helpers
from mode_jax.adapters.merge import task_pairs
from mode_jax.adapters.config import AdapterConfig
from mode_jax.kernels import adapter_matmul as K
from mode_jax.kernels import per_row as R


def _inputs(rows=45, p=70, q=50, n_ad=5, r=8, dtype=jnp.float32, seed=0):
  k = jax.random.split(jax.random.PRNGKey(seed), 5)
  x = jax.random.normal(k[0], (rows, p)).astype(dtype)
  w0 = (jax.random.normal(k[1], (p, q)) / np.sqrt(p)).astype(dtype)
  a = (jax.random.normal(k[2], (n_ad, p, r)) / np.sqrt(p)).astype(dtype)
  b = jax.random.normal(k[3], (n_ad, r, q)).astype(dtype)
  ids = jax.random.randint(k[4], (rows,), 0, n_ad - 1)     # adapter n_ad - 1 stays unused
  return x, w0, a, b, ids


@pytest.mark.parametrize("form,bs", [("gpu", K.BlockSizes(16, 16, 16)),
                                     ("tpu", K.BlockSizes(8, 128, 128))])
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["f32", "bf16"])
@pytest.mark.parametrize("rows,r", [(45, 8), (3, 4), (64, 64)])
def test_per_row_matches_gather_and_ragged_dot(form, bs, dtype, rows, r):
  x, w0, a, b, ids = _inputs(rows=rows, r=r, dtype=dtype)
  got = R.per_row_adapter_matmul(x, w0, a, b, ids, scale=0.5, block_sizes=bs, backend=form,
                                 interpret=True)
  want = R.reference(x, w0, a, b, ids, scale=0.5)
  tol = 2e-5 if dtype == jnp.float32 else 3e-2
  assert got.shape == (rows, 50) and helpers.rel_err(got, want) < tol
  if dtype == jnp.float32:
    assert helpers.rel_err(R.ragged_reference(x, w0, a, b, ids, scale=0.5), want) < tol


def test_group_layout_one_adapter_per_tile():
  ids = jnp.asarray([2, 0, 2, 2, 1, 0, 2], jnp.int32)
  dest, tiles, rows = R._group_layout(ids, 4, 2)
  assert rows == 2 * (4 + 4)                       # ceil(7/2) + min(4, 7) tiles of 2 rows
  dest, tiles = np.asarray(dest), np.asarray(tiles)
  assert len(set(dest.tolist())) == 7
  for row, d in enumerate(dest):
    assert tiles[d // 2] == int(ids[row])         # the row's tile serves its adapter


def test_merged_task_adapters_equal_task_routed_term():
  m, r, nb, p, q, t = 4, 8, 4, 24, 16, 3
  k = jax.random.split(jax.random.PRNGKey(3), 5)
  a = jax.random.normal(k[0], (p, r))
  b = jax.random.normal(k[1], (m * r, q))
  logits = jax.random.normal(k[2], (t, nb, m))
  table = jax.nn.softmax(logits, -1)
  x = jax.random.normal(k[3], (10, p))
  ids = jnp.asarray([0, 1, 2, 1, 0, 2, 2, 1, 0, 0])
  w0 = jnp.zeros((p, q))
  acfg = AdapterConfig("mode", experts=m, rank=r, block=r // nb, router="task", num_tasks=t)
  a_t, b_t = task_pairs({"A": a, "B": b.reshape(m, r, q), "task_router": logits}, acfg)
  want = K.reference(x, w0, a, b, table[ids], experts=m)
  got = R.per_row_adapter_matmul(x, w0, a_t, b_t, ids, block_sizes=K.BlockSizes(16, 16, 16),
                                 interpret=True)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)

