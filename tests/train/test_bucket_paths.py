"""Bucket workdirs (gs://...): every output of a training job goes through etils.epath or
orbax to the bucket, none to a local path, and a second run resumes from it."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

from mode_jax import atomic_io

WORKER = os.path.join(os.path.dirname(__file__), "bucket_worker.py")


def test_is_remote():
  assert atomic_io.is_remote("gs://b/run") and atomic_io.is_remote("s3://b")
  assert not atomic_io.is_remote("runs/x") and not atomic_io.is_remote("/abs/gs://x")


def test_a_training_job_with_a_bucket_workdir_writes_everything_there(tmp_path):
  store, cwd = tmp_path / "store", tmp_path / "cwd"
  store.mkdir()
  cwd.mkdir()
  env = dict(os.environ, JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
  p = subprocess.run([sys.executable, WORKER, str(store), str(cwd)], capture_output=True,
                     text=True, env=env, timeout=900)
  assert p.returncode == 0, p.stderr[-4000:]
  run = store / "run"
  for name in ("metrics.jsonl", "task_ids.json", "eval_final.json", "eval_final.md",
               "adapter/mode_jax_adapter.json", "adapter/adapter.safetensors",
               "checkpoints/6", "checkpoint_best") + (
                   ("tensorboard",) if importlib.util.find_spec("tensorboard") else ()):
    assert (run / name).exists(), (name, sorted(os.listdir(run)))
  assert not list(cwd.rglob("*")), list(cwd.rglob("*"))[:5]     # nothing written locally
  assert "resumed from gs://bucket/run/checkpoints/6" in p.stdout + p.stderr
  lines = (run / "metrics.jsonl").read_text().splitlines()
  assert lines and all(l.startswith("{") for l in lines)


def test_atomic_writes_reads_and_recovery_on_a_bucket(tmp_path):
  from fake_bucket import fake_bucket
  store = tmp_path / "store"
  store.mkdir()
  with fake_bucket(store):
    atomic_io.write_json_atomic("gs://bucket/a/x.json", {"k": 1})
    assert atomic_io.read_json("gs://bucket/a/x.json") == {"k": 1}
    for i in range(3):
      atomic_io.append_line("gs://bucket/a/m.jsonl", json.dumps({"i": i}))
    with atomic_io.atomic_file("gs://bucket/a/t.jsonl", "wb") as f:
      f.write(b'{"i": 0}\n{"i": 1')                       # a torn last line
    assert atomic_io.recover_jsonl("gs://bucket/a/t.jsonl") == [{"i": 0}]
    with atomic_io.atomic_directory("gs://bucket/d") as d:
      os.makedirs(os.path.join(d, "sub"))
      open(os.path.join(d, "sub", "f.txt"), "w").write("v1")
    with pytest.raises(RuntimeError):                      # a failed rewrite keeps the old
      with atomic_io.atomic_file("gs://bucket/a/x.json") as f:
        f.write("{partial")
        raise RuntimeError("crash")
    assert atomic_io.read_json("gs://bucket/a/x.json") == {"k": 1}
    atomic_io.download("gs://bucket/d", str(tmp_path / "copy"))
  assert [json.loads(l)["i"] for l in (store / "a" / "m.jsonl").read_text().splitlines()] == [
      0, 1, 2]
  assert (store / "a" / "t.jsonl").read_bytes() == b'{"i": 0}\n'
  assert (store / "d" / "sub" / "f.txt").read_text() == "v1"
  assert (tmp_path / "copy" / "sub" / "f.txt").read_text() == "v1"
  assert sorted(os.listdir(store / "a")) == ["m.jsonl", "t.jsonl", "x.json"]   # no temp left


def test_hf_checkpoint_and_adapter_round_trip_through_a_bucket(tmp_path, hf_checkpoint):
  import numpy as np
  import jax
  from fake_bucket import fake_bucket
  from mode_jax.adapters.export import load_adapter, save_adapter
  from mode_jax.adapters.config import AdapterConfig
  from mode_jax.model import hf_io
  _, path = hf_checkpoint("llama_gqa_headdim")
  cfg, params = hf_io.load_hf_checkpoint(path)
  adapter = {"layers_0": {"attn": {"q": {"adapter": {"A": np.ones((2, 3), np.float32)}}}}}
  store = tmp_path / "store"
  store.mkdir()
  with fake_bucket(store):
    hf_io.save_hf_checkpoint("gs://bucket/base", cfg, params)
    cfg2, params2 = hf_io.load_hf_checkpoint("gs://bucket/base")
    save_adapter("gs://bucket/adapter", adapter, AdapterConfig("lora", rank=2))
    tree, acfg = load_adapter("gs://bucket/adapter")
    with pytest.raises(hf_io.CheckpointError, match="gs://bucket/nope: checkpoint directory"):
      hf_io.load_hf_checkpoint("gs://bucket/nope")
  assert (store / "base" / "config.json").exists() and (store / "adapter").is_dir()
  assert cfg2.num_layers == cfg.num_layers and acfg.method == "lora"
  assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(params),
                                                  jax.tree.leaves(params2)))
  np.testing.assert_array_equal(tree["layers_0"]["attn"]["q"]["adapter"]["A"], 1.0)
