"""Loss and the jitted train / eval steps.

The trainable tree (adapters and routers, or every parameter for full fine-tuning) is the only
thing that gets gradients and optimizer state; the frozen base is an input of the step.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import optax

from mode_jax.adapters.params import combine
from mode_jax.model.transformer import head_weight
from mode_jax.train.losses import (chunked_cross_entropy, cross_entropy, gather_loss_positions,
                                   head_cross_entropy)

@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any          # trainable leaves only
  opt_state: Any

def forward(model, params, batch, mutable=("aux_loss",), **kw):
  """`model.apply` on a batch's features; `kw` go to the model (e.g. head=False)."""
  out, state = model.apply(
      {"params": params}, batch["decoder_input_tokens"],
      positions=batch.get("decoder_positions"), segment_ids=batch.get("decoder_segment_ids"),
      task_ids=batch.get("decoder_task_ids"), mutable=list(mutable), **kw)
  return out, state

def lm_losses(model, params, batch, loss_chunk: int = 0, mutable=("aux_loss",),
              loss_positions: int = 0):
  """((sum loss, sum correct, sum weights), mutable state) of the LM objective; with
  `loss_positions` > 0 the head runs only on the first that many loss-weighted positions of
  each row (`losses.gather_loss_positions`), with `loss_chunk` > 0 through
  `losses.chunked_cross_entropy` (no [B, T, V] logits)."""
  targets, weights = batch["decoder_target_tokens"], batch["decoder_loss_weights"]
  if not loss_chunk and not loss_positions:
    logits, state = forward(model, params, batch, mutable)
    return cross_entropy(logits, targets, weights), state
  hidden, state = forward(model, params, batch, mutable, head=False)
  if loss_positions:
    hidden, targets, weights = gather_loss_positions(hidden, targets, weights, loss_positions)
  cfg = model.cfg
  head, tied = head_weight(cfg, params), cfg.tie_embeddings
  if loss_chunk:
    sums = chunked_cross_entropy(hidden, head, targets, weights, tied=tied, chunk=loss_chunk,
                                 dtype=cfg.compute_dtype, cap=cfg.final_softcap)
  else:
    sums = head_cross_entropy(hidden, head, targets, weights, tied=tied,
                              dtype=cfg.compute_dtype, cap=cfg.final_softcap)
  return sums, state

def loss_fn(trainable, frozen, batch, model, full: bool, loss_chunk: int = 0,
            loss_positions: int = 0):
  """The LM loss of a batch: (mean loss + auxiliary losses, (metrics, mutable state)), with the
  base frozen unless `full`; `loss_chunk` / `loss_positions` as in `lm_losses`."""
  params = trainable if full else combine(frozen, trainable, where="train step")
  (s_loss, s_correct, s_w), state = lm_losses(model, params, batch, loss_chunk,
                                              loss_positions=loss_positions)
  denom = jnp.maximum(s_w, 1.0)
  aux = sum((jnp.sum(x) for x in jax.tree.leaves(state.get("aux_loss", {}))), jnp.float32(0.0))
  loss = s_loss / denom + aux
  seg = batch.get("decoder_segment_ids")
  real = jnp.sum(seg > 0) if seg is not None else jnp.sum(batch["decoder_input_tokens"] >= 0)
  dropped = jnp.sum(batch["decoder_loss_weights"].astype(jnp.float32)) - s_w
  return loss, {"loss": s_loss / denom, "aux_loss": aux, "accuracy": s_correct / denom,
                "tokens": real.astype(jnp.float32), "target_tokens": s_w,
                "dropped_targets": dropped}

def make_train_step(model, tx: optax.GradientTransformation, lr_fn, full: bool, loss=None,
                    grad_accum: int = 1, loss_chunk: int = 0, loss_positions: int = 0):
  """`loss(trainable, frozen, batch, model, full) -> (loss, metrics)` defaults to the LM
  `loss_fn` (chunked over `loss_chunk` positions when > 0); metrics need "loss", "accuracy" and
  "tokens" (the loop logs them).

  `state.step` counts micro-batches; with `grad_accum` > 1 (`optax.MultiSteps`) the schedule
  advances once per optimizer update, so the logged lr is `lr_fn(step // grad_accum)`."""
  loss = loss or functools.partial(loss_fn, loss_chunk=loss_chunk,
                                   loss_positions=loss_positions)
  accum = max(int(grad_accum), 1)

  def train_step(state: TrainState, frozen, batch):
    grad_fn = jax.value_and_grad(loss, has_aux=True)
    (_, metrics), grads = grad_fn(state.params, frozen, batch, model, full)
    updates, opt_state = tx.update(grads, state.opt_state, state.params)
    params = optax.apply_updates(state.params, updates)
    finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(params)]))
    metrics = dict(metrics, grad_norm=optax.global_norm(grads), lr=lr_fn(state.step // accum),
                   params_finite=finite)
    return TrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics
  return train_step
