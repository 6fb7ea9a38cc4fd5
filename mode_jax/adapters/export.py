"""Adapter-only export / import: a small directory that applies to a base checkpoint by path.

    save_adapter("runs/x/adapter", params, acfg)      # adapter leaves of a full tree (or only them)
    ad, acfg = load_adapter("runs/x/adapter")
    params = adapters.combine(base_params, ad)        # KeyError names any path the base lacks

Layout: `mode_jax_adapter.json` ({"format", "adapter": AdapterConfig fields, "metadata"}) and
`adapter.safetensors` whose tensor names are the tree paths ("layers_0/attn/q/adapter/A").
Written atomically (temp directory, then rename). This is the project's own format, for every
method; its config is deliberately not called `adapter_config.json` (PEFT's name: PEFT and vLLM
would try to read it). Directories written before that rename (an `adapter_config.json` with
format mode_jax-adapter-v1) still load. PEFT-format LoRA and merged HF checkpoints:
`adapters.interchange`.
"""

from __future__ import annotations

import json
import os
from typing import Optional

import flax.linen as nn
import jax
import numpy as np
import safetensors.numpy
from etils import epath
from safetensors import SafetensorError
from safetensors.numpy import save_file

from mode_jax.adapters.config import AdapterConfig
from mode_jax.adapters.params import flatten, split, unflatten
from mode_jax.atomic_io import atomic_directory, is_remote, read_json
from mode_jax.model import hf_io

FORMAT = "mode_jax-adapter-v1"
CONFIG_FILE = "mode_jax_adapter.json"
_LEGACY_CONFIG_FILE = "adapter_config.json"
WEIGHTS_FILE = "adapter.safetensors"


def save_adapter(path: str, params, acfg: AdapterConfig, *,
                 metadata: Optional[dict] = None) -> None:
  """Writes the adapter leaves of `params` (a full tree or an adapter-only tree)."""
  _, ad = split(nn.meta.unbox(params))
  if not ad:
    raise ValueError("save_adapter: params contain no adapter leaves (nothing named 'adapter')")
  tensors = {k: np.ascontiguousarray(np.asarray(jax.device_get(v)))
             for k, v in flatten(ad).items()}
  with atomic_directory(path) as tmp:
    with open(os.path.join(tmp, CONFIG_FILE), "w") as f:
      json.dump({"format": FORMAT, "adapter": acfg.to_dict(), "metadata": metadata or {}},
                f, indent=2)
    save_file(tensors, os.path.join(tmp, WEIGHTS_FILE))


def load_adapter(path: str) -> tuple[dict, AdapterConfig]:
  """(adapter-only tree of numpy arrays, AdapterConfig) from a `save_adapter` directory."""
  cfg_path, w_path = os.path.join(path, CONFIG_FILE), os.path.join(path, WEIGHTS_FILE)
  legacy = os.path.join(path, _LEGACY_CONFIG_FILE)
  if not epath.Path(cfg_path).is_file() and epath.Path(legacy).is_file():
    cfg_path = legacy
  for p in (cfg_path, w_path):
    if not epath.Path(p).is_file():
      raise FileNotFoundError(f"load_adapter: missing {p}")
  meta = read_json(cfg_path)
  if meta.get("format") != FORMAT:
    raise ValueError(f"load_adapter: {cfg_path}: field 'format' is {meta.get('format')!r}, "
                     f"expected {FORMAT!r}")
  if "adapter" not in meta:
    raise ValueError(f"load_adapter: {cfg_path} has no 'adapter' field")
  acfg = AdapterConfig.from_dict(meta["adapter"], where=f"{cfg_path}: field 'adapter'")
  return unflatten(_tensors(w_path)), acfg


def read_metadata(path: str) -> dict:
  """The `metadata` a `save_adapter` directory was written with (base, task ids, vocab, BOS)."""
  cfg_path = os.path.join(path, CONFIG_FILE)
  if not epath.Path(cfg_path).is_file():
    raise FileNotFoundError(f"read_metadata: missing {cfg_path}")
  meta = read_json(cfg_path).get("metadata", {})
  if not isinstance(meta, dict):
    raise ValueError(f"{cfg_path}: field 'metadata' is not an object")
  return meta


def _tensors(w_path: str):
  """(name, array) of a safetensors file, local (memory-mapped) or on a bucket (read whole)."""
  if is_remote(w_path):
    try:
      yield from safetensors.numpy.load(epath.Path(w_path).read_bytes()).items()
    except (SafetensorError, OSError, ValueError) as e:
      raise hf_io.CheckpointError(f"{w_path}: not a readable safetensors file ({e})") from e
    return
  with hf_io.open_safetensors(w_path) as f:
    for name in f.keys():
      yield name, hf_io.read_tensor(f, w_path, name)
