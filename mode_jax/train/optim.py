"""Optimizers from config (optax): AdamW or Adafactor, warmup + cosine/linear/constant decay,
global-norm clipping, gradient accumulation (optax.MultiSteps)."""

from __future__ import annotations

import optax


def schedule(cfg) -> optax.Schedule:
  """cfg: lr, warmup_steps, decay ("cosine" | "linear" | "constant"), steps, end_lr_frac."""
  warm = max(int(cfg.warmup_steps), 0)
  rest = max(int(cfg.steps) - warm, 1)
  end = cfg.lr * cfg.end_lr_frac
  if cfg.decay == "cosine":
    decay = optax.cosine_decay_schedule(cfg.lr, rest, alpha=end / cfg.lr if cfg.lr else 0.0)
  elif cfg.decay == "linear":
    decay = optax.linear_schedule(cfg.lr, end, rest)
  elif cfg.decay == "constant":
    decay = optax.constant_schedule(cfg.lr)
  else:
    raise ValueError(f"train.decay={cfg.decay!r}: expected cosine, linear or constant")
  if not warm:
    return decay
  return optax.join_schedules([optax.linear_schedule(0.0, cfg.lr, warm), decay], [warm])


def make_optimizer(cfg) -> tuple[optax.GradientTransformation, optax.Schedule]:
  """cfg: optimizer ("adamw" | "adafactor"), weight_decay, grad_clip, grad_accum + schedule."""
  lr = schedule(cfg)
  if cfg.optimizer == "adamw":
    tx = optax.adamw(lr, b1=0.9, b2=0.999, eps=1e-8, weight_decay=cfg.weight_decay)
  elif cfg.optimizer == "adafactor":
    # The paper's setting (Adafactor, lr 1e-3); no relative step-size scaling, so `lr` is the lr.
    tx = optax.adafactor(lr, multiply_by_parameter_scale=False, clipping_threshold=None,
                         weight_decay_rate=cfg.weight_decay or None)
  else:
    raise ValueError(f"train.optimizer={cfg.optimizer!r}: expected adamw or adafactor")
  if cfg.grad_clip:
    tx = optax.chain(optax.clip_by_global_norm(cfg.grad_clip), tx)
  if cfg.grad_accum > 1:
    tx = optax.MultiSteps(tx, every_k_schedule=cfg.grad_accum)
  return tx, lr
