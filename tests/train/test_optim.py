"""Optimizer wiring: schedule values, clipping, gradient accumulation."""

import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from mode_jax.train.optim import make_optimizer, schedule


def cfg(**kw):
  base = dict(lr=1e-2, warmup_steps=10, decay="cosine", steps=110, end_lr_frac=0.1,
              optimizer="adamw", weight_decay=0.0, grad_clip=0.0, grad_accum=1)
  base.update(kw)
  return ml_collections.ConfigDict(base)


def test_schedule_values():
  s = schedule(cfg())
  assert float(s(0)) == 0.0 and abs(float(s(5)) - 5e-3) < 1e-9 and abs(float(s(10)) - 1e-2) < 1e-9
  assert abs(float(s(110)) - 1e-3) < 1e-9          # cosine down to end_lr_frac * lr
  assert abs(float(schedule(cfg(decay="linear"))(60)) - (1e-2 + 1e-3) / 2) < 1e-9
  assert float(schedule(cfg(decay="constant", warmup_steps=0))(77)) == 1e-2
  with pytest.raises(ValueError, match="train.decay"):
    schedule(cfg(decay="step"))
  with pytest.raises(ValueError, match="train.optimizer"):
    make_optimizer(cfg(optimizer="sgd"))


def test_gradient_accumulation_averages_micro_batches():
  params = {"w": jnp.array([1.0, -2.0, 3.0])}
  g1, g2 = {"w": jnp.array([0.5, 1.0, -1.0])}, {"w": jnp.array([1.5, -3.0, 2.0])}
  tx, _ = make_optimizer(cfg(grad_accum=2, warmup_steps=0, decay="constant"))
  st = tx.init(params)
  u1, st = tx.update(g1, st, params)
  assert float(jnp.abs(u1["w"]).max()) == 0.0     # no update after the first micro-batch
  p1 = optax.apply_updates(params, u1)
  u2, st = tx.update(g2, st, p1)
  ref_tx, _ = make_optimizer(cfg(grad_accum=1, warmup_steps=0, decay="constant"))
  ref, _ = ref_tx.update({"w": (g1["w"] + g2["w"]) / 2}, ref_tx.init(params), params)
  np.testing.assert_allclose(u2["w"], ref["w"], rtol=1e-6)


def test_both_optimizers_with_clipping_update():
  params = {"w": jnp.ones((4, 3))}
  g = {"w": jnp.full((4, 3), 100.0)}
  for name in ("adamw", "adafactor"):
    tx, _ = make_optimizer(cfg(optimizer=name, grad_clip=1.0, warmup_steps=0,
                               decay="constant"))
    u, _ = tx.update(g, tx.init(params), params)
    assert np.all(np.isfinite(np.asarray(u["w"]))) and float(jnp.abs(u["w"]).max()) > 0


def test_logged_lr_follows_optimizer_updates_under_gradient_accumulation():
  """With grad_accum=2 the schedule advances once per update, so micro-steps 0, 1 log s(0) and
  2, 3 log s(1) (it used to log s(micro-step), twice as far along the warmup)."""
  import jax
  from mode_jax.train.step import TrainState, make_train_step
  c = cfg(grad_accum=2, warmup_steps=4, decay="constant", steps=8)
  tx, lr_fn = make_optimizer(c)

  def loss(trainable, frozen, batch, model, full):
    val = jnp.sum(trainable["w"] ** 2)
    return val, {"loss": val, "accuracy": val, "tokens": val}
  step = jax.jit(make_train_step(None, tx, lr_fn, True, loss, grad_accum=2))
  params = {"w": jnp.ones(3)}
  state = TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=tx.init(params))
  lrs = []
  for _ in range(6):
    state, m = step(state, {}, {})
    lrs.append(float(m["lr"]))
  want = [float(lr_fn(k // 2)) for k in range(6)]
  np.testing.assert_allclose(lrs, want)
  assert lrs[2] == lrs[3] and abs(lrs[2] - 2.5e-3) < 1e-9 and abs(lrs[4] - 5e-3) < 1e-9
