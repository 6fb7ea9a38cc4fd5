"""Token cross-entropy, full or chunked so that [B, T, V] logits never exist at once.

`cross_entropy(logits, ...)` takes materialised logits (evaluation, small vocabularies).
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

import jax
import jax.numpy as jnp

from mode_jax.model.layers import constrain, vocab_logits


def cross_entropy(logits, targets, weights):
  """Weighted token cross-entropy (float32): (sum loss, sum correct, sum weights)."""
  logp = jax.nn.log_softmax(logits.astype(jnp.float32), axis=-1)
  nll = -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]
  w = weights.astype(jnp.float32)
  correct = (jnp.argmax(logits, -1) == targets).astype(jnp.float32)
  return jnp.sum(nll * w), jnp.sum(correct * w), jnp.sum(w)


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
    logits = constrain(vocab_logits(constrain(h, "batch", "length", "embed"), head, tied=tied,
                                    dtype=dtype, cap=cap), "batch", "length", "vocab")
    return cross_entropy(logits, tg, w)

  def body(acc, xs):
    return jax.tree.map(jnp.add, acc, one(*xs)), None
  zero = (jnp.float32(0.0),) * 3
  sums, _ = jax.lax.scan(body, zero, (split(hidden), split(targets), split(weights)))
  return sums
