"""`python -m mode_jax.train.fit_check` compiles a config's train, eval and sampling programs on
8 simulated devices and reads their memory (small config here; the paper-scale table is in
docs/); and the activation constraints it relies on are live under `partitioning.activate`."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import flax.linen as nn

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def run(tmp_path, *extra):
  out = tmp_path / "fit.json"
  r = subprocess.run([sys.executable, "-m", "mode_jax.train.fit_check",
                      "--config=configs/mode_synthetic.py", "--devices=8",
                      "--config.mesh.shape=(1, 8, 1)", "--config.train.batch_size=16",
                      f"--json={out}", *extra], cwd=ROOT, capture_output=True, text=True,
                     timeout=600)
  return r, (json.loads(out.read_text()) if out.exists() else None)


def test_fit_check_compiles_train_eval_and_sampling_and_decides_fit(tmp_path):
  r, rep = run(tmp_path, "--hbm_gib=1")
  assert r.returncode == 0, r.stderr[-3000:]
  assert set(rep["programs"]) == {"train_step", "eval_loss", "sample"}
  assert rep["programs"]["sample"]["analytic"]["parameters"] > 0
  assert rep["config"]["mesh"] == {"data": 1, "fsdp": 8, "tensor": 1}
  # The sampler serves tensor-parallel (the tiny model's 4 heads: 4-way tensor, 2 row shards).
  assert rep["config"]["sample_mesh"] == {"data": 2, "fsdp": 1, "tensor": 4}
  step = rep["programs"]["train_step"]
  assert step["compiled"]["total"] > 0 and step["analytic"]["total"] > 0
  assert step["analytic"]["frozen_weights"] > 0 and step["fits_compiled"]
  assert "| train_step |" in r.stdout
  from mode_jax.train import fit_check
  assert fit_check.failures(rep) == []
  assert fit_check.failures(rep, hbm_gib=0.0001) == ["train_step", "eval_loss", "sample"]
  tight = step["compiled"]["total"] / 2**30 * 1.01   # compiled fits, a larger analytic not
  rep["programs"]["train_step"]["analytic"]["total"] = 2**40
  assert "train_step" not in fit_check.failures(rep, hbm_gib=tight)
  assert "train_step" in fit_check.failures(rep, hbm_gib=tight, strict=True)


def test_activation_constraints_are_live_under_activate():
  """Under `partitioning.activate` a logical constraint lowers to a sharding annotation (with
  jax >= 0.10 the legacy `with mesh:` left every constraint a silent no-op)."""
  from flax.core import meta
  from mode_jax.train import partitioning
  mesh = partitioning.make_mesh(("data", "fsdp", "tensor"), (1, 1, 1))
  f = jax.jit(lambda x: nn.with_logical_constraint(x * 2, ("batch", "length")))
  with partitioning.activate(mesh, partitioning.DEFAULT_RULES):
    assert meta.global_mesh_defined()
    text = f.lower(jnp.ones((4, 4))).as_text()
  assert "sharding" in text.lower()
