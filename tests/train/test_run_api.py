"""The training-run API (`mode_jax.train.run`): a spec resolved once from the config, a frozen
result with typed fields, and the data-free spec other heads (the PRM trainer) build."""

import dataclasses
import os

import numpy as np
import pytest

from mode_jax.adapters import params as adapter_params
from mode_jax.train import run
from trainer_harness import small_config


def _small():
  return small_config({"data.num_train": 24, "data.num_eval": 3, "data.inputs_len": 64,
                       "train.steps": 2, "train.batch_size": 2, "train.ckpt_every": 100,
                       "train.warmup_steps": 0})


def test_spec_is_built_once_from_the_config(tmp_path):
  c = _small()
  spec = run.spec_from_config(c, str(tmp_path))
  assert spec.train.seq_len == 80 and spec.train.steps == 2        # inputs + targets
  assert spec.acfg.method == "mode" and spec.acfg.num_tasks in (0, len(spec.table))
  assert spec.data.mixture and spec.evals and len(spec.table) == len(spec.evals)
  assert spec.data.bos_id is None                                   # data.bos_id = -1
  assert spec.model_cfg.embed_dim == 32 and spec.base_params is None
  with pytest.raises(dataclasses.FrozenInstanceError):
    spec.acfg = None
  assert c.train.get("seq_len") is None                             # the config is untouched
  bare = run.spec_from_config(c, str(tmp_path), data=False, seq_len=33, num_tasks=3)
  assert bare.data is None and bare.train.seq_len == 33


def test_run_returns_a_frozen_typed_result_and_saves_the_adapter(tmp_path):
  c = _small()
  wd = str(tmp_path / "run")
  out = run.run_training(c, wd, log=lambda s: None)
  assert isinstance(out, run.RunResult) and out.start_step == 0
  assert np.isfinite(out.metrics["loss"]) and out.train_seconds > 0
  assert out.report["trainable"] > 0 and out.acfg == out.spec.acfg
  with pytest.raises(dataclasses.FrozenInstanceError):
    out.metrics = {}
  params = out.params()                                             # base + adapters, on host
  base, ad = adapter_params.split(params)
  assert base and ad and all(isinstance(x, np.ndarray) for x in adapter_params.flatten(params)
                             .values())
  assert os.path.exists(os.path.join(wd, "adapter", "adapter.safetensors"))
  again = run.run_training(c, wd, log=lambda s: None)               # finished: resumes at the end
  assert again.start_step == 2


def test_flatten_and_unflatten_are_inverse():
  tree = {"layers_0": {"attn": {"q": {"adapter": {"A": np.ones(2), "B": np.zeros(3)}}}},
          "x": np.arange(2)}
  flat = adapter_params.flatten(tree)
  assert sorted(flat) == ["layers_0/attn/q/adapter/A", "layers_0/attn/q/adapter/B", "x"]
  back = adapter_params.unflatten(flat)
  assert back.keys() == tree.keys() and back["layers_0"]["attn"]["q"]["adapter"]["B"].shape == (3,)
