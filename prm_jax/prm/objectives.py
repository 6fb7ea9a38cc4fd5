"""PRM training objectives on per-token logits z [B, T] with labels at step ends.

Labels arrive as ints (see `data.encode_label`): 0 = no label, else 1 + round(1000 * MC).
- "soft": binary cross-entropy with the MC value as the target (the OmegaPRM paper's best).
- "hard": BCE with target 1[MC > threshold] (threshold 0: the "any correct rollout" label).
- "pairwise": Bradley-Terry between sibling steps (same group id > 0): with MC values p, q of
  steps X, Y, the target P(X > Y) = (1 + p - q) / 2 and the loss is
  -[P log sigmoid(z_X - z_Y) + (1 - P) log sigmoid(z_Y - z_X)], averaged over pairs
  (paper Appendix B). Pairs are formed among the labelled positions of the batch.
- "orm": an outcome reward model: "hard" on outcome labels at the last token of complete
  solutions (the data, not the loss, differs).
Every loss returns (mean loss, accuracy): pointwise, 1[z > 0] == 1[target > 0.5]; pairwise,
the ordering agreement on pairs with p != q.

Weights (`data.py`'s `prm_weights`, the records' occurrence counts; None = 1 everywhere) make
the means weighted: pointwise, sum w_i l_i / sum w_i; pairwise, a pair counts w_X w_Y (the
pairs of occurrences), so a de-duplicated record weighs what the occurrences it stands for
would have weighed as separate records.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from mode_jax.adapters.params import combine

OBJECTIVES = ("soft", "hard", "pairwise", "orm")


def decode_labels(labels):
  """(mask of labelled positions, MC values in [0, 1])."""
  mask = labels > 0
  return mask, jnp.where(mask, (labels - 1).astype(jnp.float32) / 1000.0, 0.0)


def bce_with_logits(z, y):
  """Binary cross-entropy of logits z against targets y in [0, 1], numerically stable."""
  return jnp.maximum(z, 0.0) - z * y + jnp.log1p(jnp.exp(-jnp.abs(z)))


def _weights(mask, weights):
  w = mask.astype(jnp.float32)
  return w if weights is None else w * weights.astype(jnp.float32)


def pointwise(z, target, mask, weights=None):
  """(mean weighted BCE, accuracy) of step logits z against soft or hard targets where `mask`."""
  w = _weights(mask, weights)
  n = jnp.maximum(jnp.sum(w), 1.0)
  loss = jnp.sum(bce_with_logits(z, target) * w) / n
  acc = jnp.sum(((z > 0) == (target > 0.5)).astype(jnp.float32) * w) / n
  return loss, acc


def pairwise(z, mc, groups, mask, max_positions: int = 1024, weights=None):
  """(loss, accuracy) of the pairwise objective: within a group, a step with higher MC should
  score higher (logistic loss on score differences), over up to `max_positions` steps."""
  flat = mask.reshape(-1)
  count = jnp.sum(flat)
  idx = jnp.nonzero(flat, size=max_positions, fill_value=0)[0]
  valid = jnp.arange(max_positions) < count
  zf, pf, gf = z.reshape(-1)[idx], mc.reshape(-1)[idx], groups.reshape(-1)[idx]
  wf = _weights(mask, weights).reshape(-1)[idx]
  upper = jnp.triu(jnp.ones((max_positions, max_positions), bool), k=1)
  pairs = (upper & valid[:, None] & valid[None, :] & (gf[:, None] == gf[None, :])
           & (gf[:, None] > 0))
  target = (1.0 + pf[:, None] - pf[None, :]) / 2.0
  diff = zf[:, None] - zf[None, :]
  nll = -(target * jax.nn.log_sigmoid(diff) + (1.0 - target) * jax.nn.log_sigmoid(-diff))
  w = pairs.astype(jnp.float32) * wf[:, None] * wf[None, :]
  loss = jnp.sum(nll * w) / jnp.maximum(jnp.sum(w), 1.0)
  ordered = w * (pf[:, None] != pf[None, :])
  agree = (diff > 0) == (pf[:, None] > pf[None, :])
  acc = jnp.sum(agree * ordered) / jnp.maximum(jnp.sum(ordered), 1.0)
  return loss, acc


def objective_loss(objective: str, z, labels, groups=None, *, threshold: float = 0.0,
                   max_positions: int = 1024, weights=None):
  """(loss, accuracy) of `objective` (soft, hard, pairwise) on step logits and label features."""
  if objective not in OBJECTIVES:
    raise ValueError(f"PRM objective {objective!r}: expected one of {OBJECTIVES}")
  mask, mc = decode_labels(labels)
  if objective == "soft":
    return pointwise(z, mc, mask, weights)
  if objective in ("hard", "orm"):
    return pointwise(z, (mc > threshold).astype(jnp.float32), mask, weights)
  if groups is None:
    raise ValueError("the pairwise objective needs sibling group ids")
  return pairwise(z, mc, groups, mask, max_positions, weights)


def make_loss(objective: str, *, threshold: float = 0.0, max_positions: int = 1024):
  """A loss for `mode_jax.train.loop.train(..., loss=...)` over PRM batches."""
  if objective not in OBJECTIVES:
    raise ValueError(f"PRM objective {objective!r}: expected one of {OBJECTIVES}")

  def loss(trainable, frozen, batch, model, full):
    params = trainable if full else combine(frozen, trainable, where="PRM train step")
    z, state = model.apply(
        {"params": params}, batch["decoder_input_tokens"],
        positions=batch.get("decoder_positions"), segment_ids=batch.get("decoder_segment_ids"),
        task_ids=batch.get("decoder_task_ids"), mutable=["aux_loss"])
    value, acc = objective_loss(objective, z, batch["prm_labels"], batch.get("prm_groups"),
                                threshold=threshold, max_positions=max_positions,
                                weights=batch.get("prm_weights"))
    aux = sum((jnp.sum(x) for x in jax.tree.leaves(state.get("aux_loss", {}))),
              jnp.float32(0.0))
    seg = batch.get("decoder_segment_ids")
    real = jnp.sum(seg > 0) if seg is not None else jnp.sum(batch["decoder_input_tokens"] >= 0)
    labelled = jnp.sum(batch["prm_labels"] > 0).astype(jnp.float32)
    return value + aux, {"loss": value, "aux_loss": aux, "accuracy": acc,
                         "tokens": real.astype(jnp.float32), "labelled_steps": labelled}
  return loss
