"""Chunked cross-entropy: equal to the full-logits loss (values and gradients, tied and untied
heads, ragged chunks), through the train step's loss, and without the [B, T, V] buffer
(compiled temp memory)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mode_jax.adapters import AdapterConfig
from mode_jax.model import ModelConfig, Transformer
from mode_jax.model.layers import vocab_logits
from mode_jax.train import losses, step


def _inputs(b=2, t=13, e=8, v=37, seed=0):
  k = jax.random.split(jax.random.PRNGKey(seed), 4)
  hidden = jax.random.normal(k[0], (b, t, e))
  targets = jax.random.randint(k[1], (b, t), 0, v)
  weights = (jax.random.uniform(k[2], (b, t)) > 0.4).astype(jnp.float32)
  return hidden, targets, weights, k[3]


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("chunk", [1, 4, 13, 64])
def test_chunked_equals_full_logits_with_gradients(tied, chunk):
  hidden, targets, weights, k = _inputs()
  head = jax.random.normal(k, (37, 8) if tied else (8, 37))

  def full(h, w):
    return losses.cross_entropy(vocab_logits(h, w, tied=tied, dtype=jnp.float32), targets,
                                weights)

  def chunked(h, w):
    return losses.chunked_cross_entropy(h, w, targets, weights, tied=tied, chunk=chunk)
  for a, b in zip(full(hidden, head), chunked(hidden, head)):
    np.testing.assert_allclose(a, b, rtol=1e-5)
  g_full = jax.grad(lambda h, w: full(h, w)[0], argnums=(0, 1))(hidden, head)
  g_chunk = jax.grad(lambda h, w: chunked(h, w)[0], argnums=(0, 1))(hidden, head)
  for a, b in zip(g_full, g_chunk):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_train_step_loss_is_the_same_chunked_or_not():
  cfg = ModelConfig(vocab_size=61, embed_dim=16, num_layers=2, num_heads=2, num_kv_heads=1,
                    head_dim=8, mlp_dim=32)
  acfg = AdapterConfig("mode", experts=2, rank=2, targets=("q", "v"))
  model = Transformer(cfg, adapter=acfg)
  tok = jax.random.randint(jax.random.PRNGKey(1), (2, 11), 0, 61)
  params = nn.meta.unbox(model.init(jax.random.PRNGKey(0), tok)["params"])
  from mode_jax.adapters import split
  frozen, trainable = split(params)
  trainable = jax.tree.map(lambda x: x + 0.1, trainable)    # B != 0: the adapters matter
  batch = {"decoder_input_tokens": tok, "decoder_target_tokens": jnp.roll(tok, -1, 1),
           "decoder_loss_weights": jnp.ones((2, 11)).at[:, :4].set(0.0)}
  vg = lambda chunk: jax.value_and_grad(step.loss_fn, has_aux=True)(
      trainable, frozen, batch, model, False, loss_chunk=chunk)
  (l0, m0), g0 = vg(0)
  (l1, m1), g1 = vg(3)
  np.testing.assert_allclose(l0, l1, rtol=1e-5)
  np.testing.assert_allclose(m0["accuracy"], m1["accuracy"], rtol=1e-6)
  for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g1)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def _grad_temp_bytes(fn, b, t, e, v):
  """Compiled temporaries of the gradient of `fn(hidden, head, targets, weights)[0]` with
  respect to hidden [b, t, e] and a tied head [v, e]."""
  shapes = [jax.ShapeDtypeStruct(s, d) for s, d in (((b, t, e), jnp.float32),
                                                     ((v, e), jnp.float32),
                                                     ((b, t), jnp.int32), ((b, t), jnp.float32))]
  g = jax.jit(jax.grad(lambda h, w, tg, wt: fn(h, w, tg, wt)[0], argnums=(0, 1)))
  return g.lower(*shapes).compile().memory_analysis().temp_size_in_bytes


def test_chunked_loss_never_holds_the_full_logits():
  """Compiled temp memory of loss + gradient at V = 32k, 512 positions: the full logits alone
  are 2 x 512 x 32768 x 4 B = 128 MiB; the chunked program's temporaries stay far below."""
  b, t, e, v = 2, 512, 64, 32768
  temp = lambda fn: _grad_temp_bytes(fn, b, t, e, v)
  full = temp(lambda h, w, tg, wt: losses.cross_entropy(
      vocab_logits(h, w, tied=True, dtype=jnp.float32), tg, wt))
  chunked = temp(lambda h, w, tg, wt: losses.chunked_cross_entropy(
      h, w, tg, wt, tied=True, chunk=32))
  logits_bytes = b * t * v * 4
  assert full >= logits_bytes, (full, logits_bytes)
  assert chunked < logits_bytes / 3 and chunked < full / 10, (chunked, full)


@pytest.mark.parametrize("tied", [True, False])
def test_vocab_logits_gradient_equals_plain_autodiff(tied):
  """The head's custom backward (cotangent cast to the compute dtype) is exact in float32 and
  within bf16 rounding in bfloat16, against autodiff of a plain einsum."""
  hidden, _, _, k = _inputs()
  w = jax.random.normal(k, (37, 8) if tied else (8, 37))
  c = jax.random.normal(jax.random.PRNGKey(9), (2, 13, 37))
  spec = "bte,ve->btv" if tied else "bte,ev->btv"
  plain = lambda h, w: jnp.sum(jnp.einsum(spec, h, w) * c)
  ours = lambda h, w: jnp.sum(vocab_logits(h, w, tied=tied, dtype=jnp.float32) * c)
  for a, b in zip(jax.grad(plain, (0, 1))(hidden, w), jax.grad(ours, (0, 1))(hidden, w)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
  bf = lambda h, w: jnp.sum(vocab_logits(h, w, tied=tied, dtype=jnp.bfloat16) * c)
  for a, b in zip(jax.grad(plain, (0, 1))(hidden, w), jax.grad(bf, (0, 1))(hidden, w)):
    np.testing.assert_allclose(a, np.asarray(b, np.float32), rtol=0.05, atol=0.3)


@pytest.mark.parametrize("chunk", [0, 4])
def test_head_on_loss_positions_only_equals_full_loss_and_reports_dropped(chunk):
  cfg = ModelConfig(vocab_size=41, embed_dim=16, num_layers=1, num_heads=2, num_kv_heads=1,
                    head_dim=8, mlp_dim=24, final_softcap=3.0)
  model = Transformer(cfg)
  params = nn.meta.unbox(model.init(jax.random.key(0), jnp.ones((1, 4), jnp.int32))["params"])
  rs = np.random.RandomState(0)
  w = np.zeros((3, 12), np.float32)
  w[0, 8:12], w[1, 2:5], w[2, 5:11] = 1, 1, 1            # at most 6 target positions per row
  batch = {"decoder_input_tokens": jnp.asarray(rs.randint(0, 41, (3, 12))),
           "decoder_target_tokens": jnp.asarray(rs.randint(0, 41, (3, 12))),
           "decoder_loss_weights": jnp.asarray(w)}
  f = lambda p, k: step.loss_fn(p, None, batch, model, True, loss_chunk=chunk,
                                loss_positions=k)
  (ref, m_ref), g_ref = jax.value_and_grad(f, has_aux=True)(params, 0)
  (got, m), g = jax.value_and_grad(f, has_aux=True)(params, 6)
  np.testing.assert_allclose(got, ref, rtol=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-6), g, g_ref)
  assert float(m["dropped_targets"]) == 0 and float(m["target_tokens"]) == 13
  _, m = f(params, 4)                                     # row 2 has 6 targets: 2 left out
  assert float(m["dropped_targets"]) == 2


@pytest.mark.parametrize("tied", [True, False])
@pytest.mark.parametrize("cap", [None, 5.0])
def test_fused_head_cross_entropy_equals_plain_autodiff(tied, cap):
  """`head_cross_entropy`'s hand-written backward ((softmax - one-hot) x weight into the two
  head matmuls, soft-cap chain rule) against autodiff of a plain einsum + log-softmax, for the
  hidden states and the head; the correct / weight counts as plain argmax and sum."""
  hidden, targets, weights, k = _inputs(v=37)
  head = jax.random.normal(k, (37, 8) if tied else (8, 37))
  spec = "bte,ve->btv" if tied else "bte,ev->btv"

  def plain(h, w):
    logits = jnp.einsum(spec, h, w)
    if cap is not None:
      logits = cap * jnp.tanh(logits / cap)
    logp = jax.nn.log_softmax(logits, -1)
    nll = -jnp.take_along_axis(logp, targets[..., None], -1)[..., 0]
    correct = (jnp.argmax(logits, -1) == targets).astype(jnp.float32)
    return jnp.sum(nll * weights), jnp.sum(correct * weights), jnp.sum(weights)

  fused = lambda h, w: losses.head_cross_entropy(h, w, targets, weights, tied=tied, cap=cap)
  for a, b in zip(plain(hidden, head), jax.jit(fused)(hidden, head)):
    np.testing.assert_allclose(a, b, rtol=1e-5)
  g_plain = jax.grad(lambda h, w: 3.0 * plain(h, w)[0], (0, 1))(hidden, head)
  g_fused = jax.jit(jax.grad(lambda h, w: 3.0 * fused(h, w)[0], (0, 1)))(hidden, head)
  for a, b in zip(g_plain, g_fused):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  g_bf16 = jax.grad(lambda h, w: 3.0 * losses.head_cross_entropy(
      h, w, targets, weights, tied=tied, cap=cap, dtype=jnp.bfloat16)[0], (0, 1))(hidden, head)
  for a, b in zip(g_plain, g_bf16):
    assert b.dtype == jnp.float32
    np.testing.assert_allclose(a, b, rtol=0.05, atol=0.05 * float(jnp.abs(a).max()))


def test_fused_head_cross_entropy_holds_one_logits_buffer_fewer():
  """Compiled temp memory of loss + gradient (V = 32k, 512 positions): autodiff through
  log-softmax, the target gather and the argmax keeps the logits and two more [N, V] buffers;
  the fused backward forms the logit cotangent in one pass, so at least one [N, V] fewer."""
  b, t, e, v = 2, 256, 64, 32768
  temp = lambda fn: _grad_temp_bytes(fn, b, t, e, v)
  plain = temp(lambda h, w, tg, wt: losses.cross_entropy(
      vocab_logits(h, w, tied=True, dtype=jnp.float32), tg, wt))
  fused = temp(lambda h, w, tg, wt: losses.head_cross_entropy(h, w, tg, wt, tied=True))
  assert fused <= plain - b * t * v * 4, (fused, plain)
