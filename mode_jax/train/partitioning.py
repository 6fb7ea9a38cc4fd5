"""Device mesh and logical-axis rules from config; shardings for params and optimizer state."""

from __future__ import annotations

import contextlib
import logging
import math
from typing import Sequence

import flax.linen as nn
import jax
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding, PartitionSpec

# Logical axis -> mesh axes (data as config: `mesh.rules` overrides these).
DEFAULT_RULES = (
    ("batch", ("data", "fsdp")),
    ("length", None),
    ("vocab", "tensor"),
    ("embed", "fsdp"),
    ("heads", "tensor"),
    ("kv_heads", "tensor"),
    ("head_dim", None),
    ("mlp", "tensor"),
    ("layers", None),
    ("adapter_rank", None),
    ("adapter_experts", None),
    ("adapter_blocks", None),
    ("adapter_tasks", None),
)


def make_mesh(axes: Sequence[str], shape: Sequence[int], devices=None) -> Mesh:
  """Mesh over `devices` (default: all), topology-aware (`jax.make_mesh`); one entry of
  `shape` may be -1 (filled in)."""
  devices = list(jax.devices() if devices is None else devices)
  shape = list(shape)
  if len(shape) != len(axes):
    raise ValueError(f"mesh.shape {shape} and mesh.axes {list(axes)} differ in length")
  if shape.count(-1) > 1:
    raise ValueError(f"mesh.shape {shape}: at most one -1")
  known = math.prod(s for s in shape if s != -1)
  if -1 in shape:
    if len(devices) % known:
      raise ValueError(f"mesh.shape {shape} does not divide {len(devices)} devices")
    shape[shape.index(-1)] = len(devices) // known
  if math.prod(shape) != len(devices):
    raise ValueError(f"mesh.shape {shape} needs {math.prod(shape)} devices, "
                     f"have {len(devices)}")
  # jax.make_mesh orders devices by the physical topology (TPU torus, NVLink islands) through
  # mesh_utils; Auto axes keep the sharding propagation the model's logical constraints use.
  auto = (jax.sharding.AxisType.Auto,) * len(axes)
  try:
    return jax.make_mesh(tuple(shape), tuple(axes), auto, devices=devices)
  except (ValueError, NotImplementedError, AssertionError):   # a device subset it cannot place
    return Mesh(np.array(devices).reshape(shape), tuple(axes))


def rules_from_config(rules) -> tuple:
  """The logical axis rules of `config.mesh.rules` (empty: `DEFAULT_RULES`), as tuples."""
  if not rules:
    return DEFAULT_RULES
  return tuple((k, tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in rules)


def shardings(boxed_tree, mesh: Mesh, rules) -> object:
  """NamedShardings for a tree of `nn.Partitioned` leaves (as created by the model).

  A dimension that the mesh axes assigned to it do not divide (e.g. a 259-token byte vocab
  over 2 tensor shards) is replicated instead, with a log line naming the parameter."""
  specs = nn.get_partition_spec(boxed_tree)
  named = nn.logical_to_mesh_sharding(specs, mesh, rules)
  shapes = nn.meta.unbox(boxed_tree)

  def fit(path, sharding, leaf):
    spec = list(sharding.spec) + [None] * (len(leaf.shape) - len(sharding.spec))
    for i, axes in enumerate(spec):
      if axes is None:
        continue
      n = math.prod(mesh.shape[a] for a in (axes if isinstance(axes, tuple) else (axes,)))
      if leaf.shape[i] % n:
        logging.info("%s: dim %d (%d) not divisible by %s=%d; replicated",
                     jax.tree_util.keystr(path), i, leaf.shape[i], axes, n)
        spec[i] = None
    return NamedSharding(mesh, PartitionSpec(*spec))
  return jax.tree_util.tree_map_with_path(fit, named, shapes,
                                          is_leaf=lambda x: isinstance(x, NamedSharding))


@contextlib.contextmanager
def activate(mesh: Mesh, rules):
  """The context a sharded program is traced in: the logical axis rules and `mesh` as the
  global mesh. Both are needed for `nn.with_logical_constraint` to constrain anything: with
  jax >= 0.10 the legacy `with mesh:` no longer sets the mesh flax looks up, and every
  activation constraint silently became a no-op (the compiled Gemma-2B step then gathered the
  global batch on every device; `mode_jax.train.fit_check` found it)."""
  with nn.logical_axis_rules(rules), jax.set_mesh(mesh):
    yield


def batch_sharding(mesh: Mesh, rules) -> NamedSharding:
  """The sharding of a [batch, length] array under `rules`."""
  return NamedSharding(mesh, nn.logical_to_mesh_axes(("batch", "length"), rules))


def replicated(mesh: Mesh) -> NamedSharding:
  """A sharding that replicates over `mesh`."""
  return NamedSharding(mesh, PartitionSpec())


def opt_state_shardings(tx: optax.GradientTransformation, abstract_params, param_shardings,
                        mesh: Mesh):
  """Optimizer-state leaves shaped like their parameter get its sharding; factored or scalar
  leaves (Adafactor's row/column statistics, counts) are replicated."""
  abstract_state = jax.eval_shape(tx.init, abstract_params)
  rep = replicated(mesh)

  def pick(state_leaf, sharding, param):
    return sharding if getattr(state_leaf, "shape", None) == param.shape else rep
  return optax.tree_map_params(tx, pick, abstract_state, param_shardings, abstract_params,
                               transform_non_params=lambda _: rep,
                               is_leaf=lambda x: isinstance(x, NamedSharding))
