"""Orbax checkpoints of the train state: async saves, keep-last-N, resume, restore onto any mesh.

Layout: `<workdir>/checkpoints/<step>/{state, meta}` (meta: JSON with the model / adapter
configs, so an incompatible workdir is reported before anything is restored).
"""

from __future__ import annotations

import os
from typing import Any, Optional

import jax
import numpy as np
import orbax.checkpoint as ocp

from mode_jax.atomic_io import is_remote


def _path_str(path) -> str:
  """'params/layers_0/attn/q/adapter/A' for any key kind (dict key, attribute, index)."""
  parts = []
  for k in path:
    for attr in ("key", "name", "idx"):
      if hasattr(k, attr):
        parts.append(str(getattr(k, attr)))
        break
    else:
      parts.append(str(k))
  return "/".join(parts)


def _leaves(tree) -> dict:
  is_leaf = lambda x: hasattr(x, "shape") and not isinstance(x, dict)
  return {_path_str(p): v for p, v in
          jax.tree_util.tree_flatten_with_path(tree, is_leaf=is_leaf)[0]}


class CheckpointMismatch(ValueError):
  """The workdir holds a checkpoint of another model or adapter shape."""


class Checkpointer:
  def __init__(self, directory: str, *, keep: int = 3, every: int = 100,
               async_save: bool = True):
    # A bucket path goes to orbax as it is (abspath would make gs://b/x a local ./gs:/b/x).
    self.directory = directory if is_remote(directory) else os.path.abspath(directory)
    self.every = every
    self.manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True,
                                             enable_async_checkpointing=async_save),
        item_handlers={"state": ocp.StandardCheckpointHandler(),
                       "meta": ocp.JsonCheckpointHandler()})

  def latest_step(self) -> Optional[int]:
    """The step of the newest checkpoint (None: none yet)."""
    return self.manager.latest_step()

  def due(self, step: int) -> bool:
    """Whether `step` is a regular save step (every `every` steps)."""
    return self.every > 0 and step % self.every == 0

  def save(self, step: int, state, meta: dict, *, force: bool = False) -> bool:
    """Saves `state` and `meta` at `step` when due (or `force`) and not saved yet; returns
    whether it saved."""
    if not force and not self.due(step):
      return False
    if self.manager.latest_step() == step:
      return False
    return self.manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)), force=True)

  def check_compatible(self, step: int, abstract_state) -> dict:
    """Compares shapes of the saved state with `abstract_state`; raises CheckpointMismatch
    naming the first differing parameter."""
    meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
    saved = self.manager.item_metadata(step)["state"]
    want, got = _leaves(abstract_state), _leaves(saved)
    for key, leaf in want.items():
      if key not in got:
        raise CheckpointMismatch(f"{self.directory}/{step}: parameter {key} is not in the "
                                 f"checkpoint (another model or adapter?)")
      shape = tuple(getattr(got[key], "shape", np.shape(got[key])))
      if shape != tuple(leaf.shape):
        raise CheckpointMismatch(f"{self.directory}/{step}: parameter {key} has shape {shape} "
                                 f"in the checkpoint, the model needs {tuple(leaf.shape)}")
    if len(got) != len(want):
      extra = sorted(set(got) - set(want))
      raise CheckpointMismatch(f"{self.directory}/{step}: checkpoint has parameters the model "
                               f"lacks, first {extra[:1]}")
    return meta["meta"]

  def restore(self, step: int, abstract_state) -> Any:
    """Restores onto the shardings of `abstract_state` (ShapeDtypeStructs with .sharding), so a
    checkpoint written on one mesh loads onto another."""
    self.check_compatible(step, abstract_state)
    out = self.manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state)))
    return out["state"]

  def wait(self):
    """Blocks until asynchronous saves have finished."""
    self.manager.wait_until_finished()

  def close(self):
    """Waits for pending saves and releases the manager."""
    self.manager.wait_until_finished()
    self.manager.close()


class BestCheckpoint:
  """Keeps the single state with the lowest metric seen (e.g. eval loss), beside the keep-last-N
  checkpoints; the metric survives restarts (stored in the checkpoint's meta)."""

  def __init__(self, directory: str):
    self.inner = Checkpointer(directory, keep=1, every=1, async_save=False)
    step = self.inner.latest_step()
    self.best = float("inf")
    if step is not None:
      meta = self.inner.manager.restore(step, args=ocp.args.Composite(
          meta=ocp.args.JsonRestore()))["meta"]
      self.best = float(meta.get("best_metric", float("inf")))

  def save(self, step: int, state, meta: dict, *, metric: float) -> bool:
    """Saves when `metric` is lower than the best so far; returns whether it saved."""
    if not metric < self.best:
      return False
    self.best = float(metric)
    return self.inner.save(step, state, dict(meta, best_metric=self.best), force=True)

  def close(self):
    """Waits for pending saves and releases the manager."""
    self.inner.close()
