"""Fused adapted projection vs the plain-jnp reference: outputs and gradients for LoRA /
MoLoRA / MoLoRA-SD / MoDE shapes, float32 and bfloat16, ragged shapes, both kernel forms.

`AdapterMatmulCases` runs compiled on a GPU / TPU (`TestAdapterMatmul`, skipped on CPU) and
in interpret mode everywhere (`TestAdapterMatmulInterpret`, the subclass CI runs)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import helpers
from mode_jax.kernels import adapter_matmul as K

# (name, experts m, rank r, blocks nb (None = LoRA), shared A)
CONFIGS = [("lora_r1", 1, 1, None, True), ("lora_r8", 1, 8, None, True),
           ("lora_r64", 1, 64, None, True), ("mode_16x4_p1", 16, 4, 4, True),
           ("mode_4x8_p2", 4, 8, 4, True), ("mode_2x16_p16", 2, 16, 1, True),
           ("mode_1x4_p1", 1, 4, 4, True), ("molora_sd_4x8", 4, 8, 1, True),
           ("molora_3x4", 3, 4, 1, False)]
TOL = {jnp.float32: 2e-5, jnp.bfloat16: 3e-2}     # max |err| / max |ref|
# every configuration in float32; bfloat16 for one of each kind
FORWARD_CASES = ([(c, jnp.float32) for c in CONFIGS]
                 + [(c, jnp.bfloat16) for c in CONFIGS if c[0] in
                    ("lora_r8", "mode_16x4_p1", "mode_4x8_p2", "molora_sd_4x8", "molora_3x4")])


def _inputs(cfg, dtype, shape=(37, 70, 50), seed=0):
  _, m, r, nb, shared = cfg
  rows, p, q = shape
  k = jax.random.split(jax.random.PRNGKey(seed), 5)
  x = jax.random.normal(k[0], (rows, p), jnp.float32).astype(dtype)
  w0 = (jax.random.normal(k[1], (p, q)) / np.sqrt(p)).astype(dtype)
  a = (jax.random.normal(k[2], (p, r if shared else m * r)) / np.sqrt(p)).astype(dtype)
  b = jax.random.normal(k[3], (m * r, q)).astype(dtype)
  gates = None if nb is None else jax.nn.softmax(jax.random.normal(k[4], (rows, nb, m)), -1)
  return x, w0, a, b, gates


class AdapterMatmulCases:
  INTERPRET = False

  @pytest.fixture(autouse=True)
  def _backend(self):
    if not self.INTERPRET and jax.default_backend() == "cpu":
      pytest.skip("compiled Pallas needs a GPU or TPU (the Interpret subclass runs on CPU)")

  def _call(self, form, cfg, *args, block_sizes=None, scale=0.5):
    bs = block_sizes or (K.BlockSizes(16, 16, 16) if form == "gpu" else K.BlockSizes(8, 128, 128))
    return K.adapter_matmul(*args, experts=cfg[1], scale=scale, shared_down=cfg[4],
                            block_sizes=bs, backend=form, interpret=self.INTERPRET)

  @pytest.mark.parametrize("form", ["gpu", "tpu"])
  @pytest.mark.parametrize("cfg,dtype", FORWARD_CASES,
                           ids=[f"{c[0]}-{'f32' if d == jnp.float32 else 'bf16'}"
                                for c, d in FORWARD_CASES])
  def test_forward_matches_reference(self, form, dtype, cfg):
    x, w0, a, b, g = _inputs(cfg, dtype)
    got = self._call(form, cfg, x, w0, a, b, g)
    want = K.reference(x, w0, a, b, g, experts=cfg[1], scale=0.5, shared_down=cfg[4])
    assert got.shape == want.shape == (37, 50) and got.dtype == dtype
    assert helpers.rel_err(got, want) < TOL[dtype]

  @pytest.mark.parametrize("form,dtype", [("gpu", jnp.float32), ("tpu", jnp.float32),
                                          ("gpu", jnp.bfloat16)],
                           ids=["gpu-f32", "tpu-f32", "gpu-bf16"])
  @pytest.mark.parametrize("cfg", [CONFIGS[1], CONFIGS[3], CONFIGS[4], CONFIGS[8]],
                           ids=[CONFIGS[i][0] for i in (1, 3, 4, 8)])
  def test_gradients_match_reference(self, form, dtype, cfg):
    x, w0, a, b, g = _inputs(cfg, dtype, seed=1)
    cot = jax.random.normal(jax.random.PRNGKey(9), (37, 50))
    nargs = 5 if g is not None else 4

    def loss(fn):
      return lambda *t: jnp.sum(fn(*t).astype(jnp.float32) * cot)
    fused = loss(lambda *t: self._call(form, cfg, *t))
    ref = loss(lambda *t: K.reference(*t, experts=cfg[1], scale=0.5, shared_down=cfg[4]))
    args = (x, w0, a, b, g)[:nargs]
    got = jax.grad(fused, argnums=tuple(range(nargs)))(*args)
    want = jax.grad(ref, argnums=tuple(range(nargs)))(*args)
    for name, gv, wv in zip(("dx", "dW0", "dA", "dB", "dgates"), got, want):
      assert gv.dtype == wv.dtype, name
      assert helpers.rel_err(gv, wv) < 2 * TOL[dtype], name

  @pytest.mark.parametrize("rows", [1, 3, 16])
  def test_decode_shapes_with_default_blocks(self, rows):
    cfg = CONFIGS[4]
    x, w0, a, b, g = _inputs(cfg, jnp.float32, shape=(rows, 96, 130))
    got = K.adapter_matmul(x, w0, a, b, g, experts=4, scale=2.0, backend="gpu",
                           interpret=self.INTERPRET)
    want = K.reference(x, w0, a, b, g, experts=4, scale=2.0)
    assert helpers.rel_err(got, want) < TOL[jnp.float32]

  def test_leading_dims_and_zero_adapter(self):
    cfg = CONFIGS[3]
    x, w0, a, b, g = _inputs(cfg, jnp.float32, shape=(12, 40, 24))
    x3, g3 = x.reshape(3, 4, 40), g.reshape(3, 4, *g.shape[1:])
    got = self._call("gpu", cfg, x3, w0, a, b, g3)
    assert got.shape == (3, 4, 24)
    np.testing.assert_allclose(got.reshape(12, 24), self._call("gpu", cfg, x, w0, a, b, g),
                               atol=1e-6)
    base = self._call("gpu", cfg, x, w0, a, jnp.zeros_like(b), g)
    np.testing.assert_allclose(base, x @ w0, rtol=1e-5, atol=1e-5)


class TestAdapterMatmul(AdapterMatmulCases):
  INTERPRET = False


class TestAdapterMatmulInterpret(AdapterMatmulCases):
  INTERPRET = True


def test_block_sizes_validation_and_defaults():
  with pytest.raises(ValueError, match="block_m must be a positive int"):
    K.BlockSizes(0, 16, 16)
  with pytest.raises(ValueError, match="power of two >= 16"):
    K.BlockSizes(24, 16, 16).check("gpu")
  with pytest.raises(ValueError, match="% 128"):
    K.BlockSizes(8, 64, 128).check("tpu")
  assert K.BlockSizes.default("tpu", 1).block_m == 8
  assert K.BlockSizes.default("gpu", 4096) == K.BlockSizes(64, 128, 64)
  hash(K.BlockSizes())                               # a static jit argument


def test_shape_errors_name_the_operand():
  cfg = CONFIGS[4]
  x, w0, a, b, g = _inputs(cfg, jnp.float32, shape=(8, 16, 16))
  with pytest.raises(ValueError, match="A .* should be"):
    K.adapter_matmul(x, w0, a[:, :3], b, g, experts=4, interpret=True)
  with pytest.raises(ValueError, match="gates"):
    K.adapter_matmul(x, w0, a, b, g[..., :3], experts=4, interpret=True)
  with pytest.raises(ValueError, match="backend"):
    K.adapter_matmul(x, w0, a, b, g, experts=4, backend="cuda", interpret=True)
