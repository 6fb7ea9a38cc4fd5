"""Config blocks every experiment has, with their defaults in one place (configs load this file
with `mode_jax.config_files.sibling(__file__, "blocks")`; it is not an experiment itself).

Each function returns one `ml_collections.ConfigDict` block; an experiment file writes its own
values as keyword arguments, so it reads as data.
"""

import ml_collections


def train_block(steps, lr, batch, warmup=20, optimizer="adamw", **kw):
  """`config.train`: optimizer, schedule, batch, logging and checkpointing."""
  d = dict(steps=steps, batch_size=batch, seed=0, lr=lr, warmup_steps=warmup, decay="cosine",
           end_lr_frac=0.1, optimizer=optimizer, weight_decay=0.0, grad_clip=1.0, grad_accum=1,
           log_every=25, eval_every=0, ckpt_every=100, keep=2, async_ckpt=True, peak_flops=0.0,
           crash_at_step=-1,
           loss_chunk=0,   # positions per LM-loss chunk; 0: full [B, T, V] logits (small vocabs)
           loss_positions=0)   # > 0: the head only on that many loss positions per row
  _update(d, kw, "train")
  return ml_collections.ConfigDict(d)


def data_block(kind, inputs_len, targets_len, loss_on_targets_only=True, **kw):
  """`config.data`: the data kind (see `mode_jax.resolve`), lengths and the kind's settings."""
  d = dict(kind=kind, seed=0, num_train=2000, num_eval=100, inputs_len=inputs_len,
           targets_len=targets_len, loss_on_targets_only=loss_on_targets_only, bos_id=-1,
           mix_maximum=0, mix_temperature=1.0, suite="bytes", sni_dir="", protocol="within_task", num_pos=2,
           only_tasks=())
  _update(d, kw, "data")
  return ml_collections.ConfigDict(d)


def mesh_block(shape=(-1, 1, 1)):
  """`config.mesh`: (data, fsdp, tensor) device mesh; -1 takes the remaining devices."""
  return ml_collections.ConfigDict(dict(axes=("data", "fsdp", "tensor"), shape=tuple(shape),
                                        rules=(), num_devices=0))


def _update(d, kw, block):
  unknown = sorted(set(kw) - set(d))
  if unknown:
    raise KeyError(f"configs/blocks.py: unknown {block} keys {unknown}")
  d.update(kw)
