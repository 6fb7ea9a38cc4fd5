"""The kernel benchmark runs (interpret mode, tiny shapes) and its XLA baseline is the adapter
math of the reference."""

import jax
import jax.numpy as jnp
import numpy as np

from mode_jax.kernels import adapter_matmul as K


def test_kernel_bench_runs_in_interpret_mode():
  from benchmarks import kernels as bench
  rows = bench.run([(64, 128)], [4], 1, "float32", interpret=True)
  assert len(rows) == len(bench.ADAPTERS)
  for r in rows:
    assert {"base", "xla", "pallas"} <= set(r) and r["pallas"]["fwd_ms"] > 0
    assert np.isfinite(r["xla_over_pallas"]) and np.isfinite(r["pallas_overhead"])
  x = jnp.ones((4, 64))
  w0 = jnp.eye(64, 128)
  a, b = jnp.ones((64, 4)) / 64, jnp.ones((64, 128))
  g = jax.nn.softmax(jnp.zeros((4, 4, 16)), -1)
  np.testing.assert_allclose(bench.xla_adapted(x, w0, a, b, g, experts=16),
                             K.reference(x, w0, a, b, g, experts=16), rtol=1e-5)
