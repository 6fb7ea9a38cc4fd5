"""Token cross-entropy, full or chunked so that [B, T, V] logits never exist at once.

`cross_entropy(logits, ...)` takes materialised logits (evaluation, small vocabularies).
`head_cross_entropy(hidden, head, ...)` is the same from final-normed hidden states and the
vocabulary projection, with one fused backward: the logit cotangent (softmax - one-hot) * weight
is formed in one pass over the saved logits and goes straight into the two head matmuls,
instead of autodiff's chain through log-softmax, the target gather (a [N, V] broadcast and
scatter) and the argmax. That holds one [N, V] float32 buffer fewer (Gemma 3 270M, 256 loss
positions x 262k vocabulary: temporaries of the compiled head + loss gradient 768 -> 512 MiB
in XLA's memory analysis; tests/train/test_losses.py checks it at V = 32k); the step time on
CPU is unchanged (`benchmarks.lora_training`).
`chunked_cross_entropy(hidden, head, ...)` takes the final-normed hidden states [B, T, E] and
the vocabulary projection (`model.transformer.head_weight`) and scans over chunks of `chunk`
positions: each chunk's logits [B, chunk, V] are computed, reduced to (loss, correct, weight)
sums and dropped; `jax.checkpoint` on the chunk makes the backward recompute them, so the peak
is one chunk's float32 logits and their gradient instead of the whole sequence's. For the paper
config (Gemma 2B, V = 256k, 1024 positions, 16 rows per chip) that is 16.8 GB of logits per
chip without chunking and 1.05 GB per 64-position chunk. The sums are exact, not approximate:
equal to `cross_entropy` on the full logits up to float32 summation order (tested, gradients
too). Positions are chunked per row, so a batch dimension sharded over the mesh stays sharded.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from mode_jax.model.layers import constrain, vocab_logits, vocab_logits_grads


def cross_entropy(logits, targets, weights):
  """Weighted token cross-entropy (float32): (sum loss, sum correct, sum weights)."""
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  nll = -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
  w = weights.astype(jnp.float32)
  correct = (jnp.argmax(logits, -1) == targets).astype(jnp.float32)
  return jnp.sum(nll * w), jnp.sum(correct * w), jnp.sum(w)


def head_cross_entropy(hidden, head, targets, weights, *, tied: bool, dtype=jnp.float32,
                       cap=None):
  """`cross_entropy(vocab_logits(hidden, head, ...), targets, weights)` with a fused backward.

  Args:
    hidden: [..., E] final-normed states; head: the embedding [V, E] (tied) or the LM head
      [E, V]; targets: int [...]; weights: [...] (0 = no loss); dtype: the matmul dtype
      (accumulated in float32); cap: the final logit soft-cap.

  Returns:
    (sum loss, sum correct, sum weights), float32 scalars; gradients flow to `hidden` and
    `head` through the loss sum only (the other two are counts).
  """
  return _head_xent(hidden, head, targets, weights, tied, jnp.dtype(dtype), cap)


@functools.partial(jax.custom_vjp, nondiff_argnums=(4, 5, 6))
def _head_xent(hidden, head, targets, weights, tied, dtype, cap):
  return _head_xent_fwd(hidden, head, targets, weights, tied, dtype, cap)[0]


def _head_xent_fwd(hidden, head, targets, weights, tied, dtype, cap):
  logits = vocab_logits(hidden, head, tied=tied, dtype=dtype, cap=cap)
  if logits.ndim == 3:   # [B, T, V]: rows sharded like the batch, the vocabulary over tensor
    logits = constrain(logits, "batch", "length", "vocab")
  lse = jax.nn.logsumexp(logits, axis=-1)
  target_logit = jnp.take_along_axis(logits, targets[..., None], axis=-1)[..., 0]
  w = weights.astype(jnp.float32)
  correct = (jnp.argmax(logits, -1) == targets).astype(jnp.float32)
  sums = (jnp.sum((lse - target_logit) * w), jnp.sum(correct * w), jnp.sum(w))
  return sums, (hidden, head, logits, lse, targets, w)


def _head_xent_bwd(tied, dtype, cap, res, g):
  hidden, head, logits, lse, targets, w = res
  vocab = jax.lax.broadcasted_iota(jnp.int32, logits.shape, logits.ndim - 1)
  d = jnp.exp(logits - lse[..., None]) - (vocab == targets[..., None]).astype(jnp.float32)
  d = d * (g[0] * w)[..., None]
  if cap is not None:                       # logits = cap * tanh(raw / cap)
    d = d * (1.0 - jnp.square(logits / cap))
  dx, dw = vocab_logits_grads(hidden.astype(dtype), head.astype(dtype), d, tied)
  return dx.astype(hidden.dtype), dw.astype(head.dtype), None, None


_head_xent.defvjp(_head_xent_fwd, _head_xent_bwd)


def gather_loss_positions(hidden, targets, weights, k: int):
  """The first `k` loss-weighted positions of each row: (hidden [B, k, E], targets [B, k],
  weights [B, k]), so the vocabulary projection runs on k positions instead of T (instruction
  tuning puts the loss on the targets only: 64 of 256 positions in the LoRA benchmark, ~128 of
  1024 in the paper config). Rows with fewer weighted positions are filled with zero-weight
  ones; weighted positions beyond the first k are left out of the loss, so `k` must cover the
  targets of a row (`loss_fn` reports what was left out as "dropped_targets")."""
  t = hidden.shape[1]
  k = min(int(k), t)
  order = jnp.argsort(weights <= 0, axis=1, stable=True)[:, :k]       # weighted first, in order
  take = lambda a: jnp.take_along_axis(a, order.reshape(order.shape + (1,) * (a.ndim - 2)),
                                       axis=1)
  return take(hidden), take(targets), take(weights)


def chunked_cross_entropy(hidden, head, targets, weights, *, tied: bool, chunk: int,
                          dtype=jnp.float32, cap=None):
  """`cross_entropy(vocab_logits(hidden, head), targets, weights)` without the full logits.

  Args:
    hidden: [B, T, E] final-normed states (`Transformer(..., head=False)`).
    head: the embedding [V, E] (tied) or the LM head [E, V].
    targets: int [B, T]; weights: [B, T] (0 = no loss at that position).
    tied: which of the two `head` is; chunk: positions per chunk (T is padded to a multiple
      with zero weights); dtype: the matmul dtype (accumulated in float32); cap: the final
      logit soft-cap (`ModelConfig.final_softcap`).

  Returns:
    (sum loss, sum correct, sum weights), float32 scalars.
  """
  b, t, e = hidden.shape
  c = max(1, min(int(chunk), t))
  n = -(-t // c)
  pad = n * c - t
  if pad:
    hidden = jnp.pad(hidden, ((0, 0), (0, pad), (0, 0)))
    targets = jnp.pad(targets, ((0, 0), (0, pad)))
    weights = jnp.pad(weights, ((0, 0), (0, pad)))
  split = lambda a: jnp.moveaxis(a.reshape((b, n, c) + a.shape[2:]), 1, 0)   # [n, B, c, ...]

  @jax.checkpoint
  def one(h, tg, w):
    # Keep each chunk's logits sharded like the batch (rows over data/fsdp, vocab over tensor):
    # with an FSDP-sharded head, XLA would otherwise contract over the sharded embed dim and
    # materialise logits for the whole global batch on every device.
    return head_cross_entropy(constrain(h, "batch", "length", "embed"), head, tg, w, tied=tied,
                              dtype=dtype, cap=cap)

  def body(acc, xs):
    return jax.tree.map(jnp.add, acc, one(*xs)), None
  zero = (jnp.float32(0.0),) * 3
  sums, _ = jax.lax.scan(body, zero, (split(hidden), split(targets), split(weights)))
  return sums
