"""The SeqIO side of a training run: the training mixture and eval tasks a `config.data` block
builds (`RunData`), the batch stream of the training loop, and the teacher-forced validation
loss per task."""

from __future__ import annotations

import dataclasses
from typing import Callable, Iterator, Optional

import jax
import jax.numpy as jnp
import numpy as np

from mode_jax import resolve
from mode_jax.data import tasks
from mode_jax.model.transformer import Transformer
from mode_jax.train import evaluate
from mode_jax.train.step import lm_losses


def bos_id(dcfg) -> Optional[int]:
  """`config.data.bos_id` as the token to prepend (None: none; the config stores -1)."""
  return None if dcfg.bos_id is None or dcfg.bos_id < 0 else int(dcfg.bos_id)


@dataclasses.dataclass(frozen=True)
class RunData:
  """A run's SeqIO data: the vocabulary, the training mixture's registered name, the eval task
  names with their task-id table, and the `config.data` block (lengths, bos_id, ...)."""
  vocab: object
  mixture: str
  evals: list
  table: tasks.TaskIdTable
  config: object

  @property
  def lengths(self) -> dict:
    """{"inputs": inputs_len, "targets": targets_len} (seqio's sequence lengths)."""
    return {"inputs": self.config.inputs_len, "targets": self.config.targets_len}

  @property
  def bos_id(self) -> Optional[int]:
    """The BOS token prepended to every row (None: none)."""
    return bos_id(self.config)


def build(dcfg, vocab, workdir: str) -> RunData:
  """The `RunData` of a `config.data` block; the kind is a built-in name or "module:function"
  (`mode_jax.resolve.DATA_KINDS`), called as `fn(dcfg, vocab, workdir) -> (train task names,
  eval task names, TaskIdTable)`."""
  make = resolve.resolve(dcfg.kind, resolve.DATA_KINDS, "config.data.kind")
  names, evals, table = make(dcfg, vocab, workdir)
  if not names:
    raise ValueError(f"config.data.kind={dcfg.kind!r} built no training tasks")
  mix = tasks.make_mixture(f"{resolve.label(dcfg.kind)}_{len(names)}_{names[0]}_mix", names,
                           rate="examples",
                           maximum=dcfg.get("mix_maximum") or None,
                           temperature=dcfg.get("mix_temperature", 1.0))
  return RunData(vocab=vocab, mixture=mix, evals=evals, table=table, config=dcfg)


def batch_fn(data: RunData, tcfg) -> Callable[[int], Iterator[dict]]:
  """`fn(start_batch) -> iterator of numpy batches` of the training mixture (this process's
  shard of `tcfg.batch_size` rows, packed to the data block's lengths, from `start_batch` on:
  a resumed run continues the stream)."""
  n_proc = jax.process_count()
  if tcfg.batch_size % n_proc:
    raise ValueError(f"train.batch_size={tcfg.batch_size} must divide by {n_proc} processes")

  def batches(start_batch: int):
    ds = tasks.get_dataset(data.mixture, "train", data.lengths,
                           batch_size=tcfg.batch_size // n_proc, seed=tcfg.seed,
                           shard_index=jax.process_index(), num_shards=n_proc,
                           start_batch=start_batch,
                           loss_on_targets_only=data.config.loss_on_targets_only,
                           bos_id=data.bos_id)
    return ds.as_numpy_iterator()
  return batches


def make_eval_fn(model_cfg, acfg, data: RunData, batch_size: int = 8, loss_chunk: int = 0,
                 loss_positions: int = 0) -> Callable:
  """Teacher-forced loss on one fixed validation batch per eval task, and (for routed adapters)
  the mean routing entropy per task.

  Returns:
    `fn(step, trainable, frozen) -> {"eval_loss", "eval_loss/<task>",
    "routing_entropy/<task>"}` (floats). `loss_chunk` / `loss_positions` as in training (no
    [B, T, V] logits when > 0).
  """
  batches = {n: next(tasks.get_dataset(n, "validation", data.lengths, batch_size=batch_size,
                                       shuffle=False, pack=False, num_epochs=None,
                                       bos_id=data.bos_id).as_numpy_iterator())
             for n in data.evals}
  model = Transformer(model_cfg, adapter=acfg)
  routed = acfg is not None and acfg.routed

  @jax.jit
  def one(params, batch):
    (s_loss, _, s_w), state = lm_losses(model, params, batch, loss_chunk,
                                        mutable=("aux_loss", "routing"),
                                        loss_positions=loss_positions)
    ents = [jnp.mean(x) for p, x in jax.tree_util.tree_flatten_with_path(
        state.get("routing", {}))[0] if "entropy" in jax.tree_util.keystr(p)]
    return s_loss / jnp.maximum(s_w, 1.0), (jnp.mean(jnp.stack(ents)) if ents else 0.0)

  def eval_fn(step, trainable, frozen):
    del step
    params = evaluate.full_params(trainable, frozen, acfg is None)
    out = {}
    for name, b in batches.items():
      loss, ent = one(params, {k: jnp.asarray(v) for k, v in b.items()})
      out[f"eval_loss/{name}"] = float(loss)
      if routed:
        out[f"routing_entropy/{name}"] = float(ent)
    out["eval_loss"] = float(np.mean([v for k, v in out.items() if k.startswith("eval_loss/")]))
    return out
  return eval_fn
