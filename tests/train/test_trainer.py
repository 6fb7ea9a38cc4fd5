"""Trainer: bitwise resume after SIGKILL, NaN stop, incompatible checkpoints, 8-device sharded
equivalence and restore across meshes. Each run is a subprocess (tests/train/trainer_harness.py)
so SIGKILL and forced host device counts stay out of the test process."""

import json
import os
import subprocess
import sys

import numpy as np

HARNESS = os.path.join(os.path.dirname(__file__), "trainer_harness.py")


def run(workdir, overrides, devices=1, expect_ok=True):
  out = os.path.join(str(workdir), "out.npz")
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
             JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
  p = subprocess.run([sys.executable, HARNESS, str(workdir), out, json.dumps(overrides)],
                     capture_output=True, text=True, env=env, timeout=600)
  if expect_ok:
    assert p.returncode == 0, p.stderr[-3000:]
    with open(out + ".json") as f:
      info = json.load(f)
    return dict(np.load(out)), info, p
  return None, None, p


def same(a, b, exact=True):
  keys = [k for k in a if not k.startswith("__")]
  assert keys and set(keys) == {k for k in b if not k.startswith("__")}
  for k in keys:
    if exact:
      np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    else:
      np.testing.assert_allclose(a[k], b[k], rtol=2e-4, atol=2e-5, err_msg=k)


def test_resume_after_sigkill_is_bitwise_identical(tmp_path):
  ref, _, _ = run(tmp_path / "a", {})
  _, _, p = run(tmp_path / "b", {"train.crash_at_step": 3}, expect_ok=False)
  assert p.returncode == -9, p.stderr[-2000:]
  assert sorted(os.listdir(tmp_path / "b" / "checkpoints")) == ["2"]
  resumed, _, p = run(tmp_path / "b", {})
  assert "resumed from" in p.stdout and int(resumed["__start__"]) == 2
  same(ref, resumed, exact=True)


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
  _, _, p = run(tmp_path, {"train.lr": 1e30, "train.grad_clip": 0.0, "train.warmup_steps": 5,
                           "train.steps": 20, "train.decay": "constant", "train.ckpt_every": 1,
                           "adapter.method": "none"}, expect_ok=False)
  assert p.returncode != 0 and "NonFiniteLoss: non-finite loss" in p.stderr
  last = int(p.stderr.split("last good checkpoint is step ")[1].split()[0])
  import orbax.checkpoint as ocp
  state = ocp.StandardCheckpointer().restore(tmp_path / "checkpoints" / str(last) / "state")
  leaves = [np.asarray(x) for x in __import__("jax").tree.leaves(state["params"])]
  assert last >= 1 and leaves and all(np.isfinite(x).all() for x in leaves)


def test_incompatible_checkpoint_names_the_parameter(tmp_path):
  run(tmp_path, {"train.steps": 2})
  _, _, p = run(tmp_path, {"train.steps": 4, "adapter.rank": 8}, expect_ok=False)
  assert p.returncode != 0 and "CheckpointMismatch" in p.stderr
  assert "adapter" in p.stderr and "shape" in p.stderr


def test_eight_device_sharded_step_matches_single_device_and_restores_across_meshes(tmp_path):
  full = {"adapter.method": "none", "train.steps": 4, "train.batch_size": 8,
          "train.ckpt_every": 2}
  single, _, _ = run(tmp_path / "one", dict(full, **{"mesh.num_devices": 1}), devices=8)
  sharded, info, _ = run(tmp_path / "eight", dict(full, **{"mesh.shape": [2, 2, 2]}), devices=8)
  assert info["devices"] == 8
  gate = [v for k, v in info["specs"].items() if "gate" in k and "kernel" in k][0]
  assert gate.endswith("('fsdp', 'tensor')"), info["specs"]           # embed -> fsdp, mlp -> tensor
  assert any(s.endswith("('fsdp', 'tensor')") for s in info["opt_specs"]), info["opt_specs"]
  np.testing.assert_allclose(single["__loss__"], sharded["__loss__"], rtol=1e-5)
  same(single, sharded, exact=False)
  # Saved on 8 devices at step 2, resumed on 1 device (and the reverse): same result.
  run(tmp_path / "x", dict(full, **{"mesh.shape": [2, 2, 2], "train.steps": 2}), devices=8)
  moved, _, _ = run(tmp_path / "x", dict(full, **{"mesh.num_devices": 1}), devices=8)
  assert int(moved["__start__"]) == 2
  same(single, moved, exact=False)
  run(tmp_path / "y", dict(full, **{"mesh.num_devices": 1, "train.steps": 2}), devices=8)
  back, _, _ = run(tmp_path / "y", dict(full, **{"mesh.shape": [2, 2, 2]}), devices=8)
  same(single, back, exact=False)


def test_sigterm_saves_at_the_next_step_boundary_and_exits_143(tmp_path):
  """Spot-VM preemption: SIGTERM mid-run saves the checkpoint of the step being finished,
  exits with 143, and the same run resumes from it."""
  import signal
  out = os.path.join(str(tmp_path), "out.npz")
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=1",
             JAX_PLATFORMS="cpu", TF_CPP_MIN_LOG_LEVEL="3")
  over = {"train.steps": 400, "train.ckpt_every": 1000, "train.log_every": 1}
  p = subprocess.Popen([sys.executable, HARNESS, str(tmp_path), out, json.dumps(over)],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
  seen = []
  for line in p.stdout:
    seen.append(line)
    if line.startswith("step 3/"):
      p.send_signal(signal.SIGTERM)
      break
  rest, err = p.communicate(timeout=300)
  text = "".join(seen) + rest
  assert p.returncode == 143, err[-3000:]
  saved = int(text.split("preempted at step ")[1].split(":")[0])
  assert 3 <= saved < 400
  ckpts = sorted(int(d) for d in os.listdir(tmp_path / "checkpoints") if d.isdigit())
  assert ckpts[-1] == saved
  _, _, again = run(tmp_path, dict(over, **{"train.steps": saved + 2}))
  assert f"resumed from {tmp_path}/checkpoints/{saved}" in again.stdout


def test_training_from_an_hf_checkpoint_loads_it_sharded(tmp_path):
  """run_training with checkpoint.hf_path on a 2-device FSDP mesh: the base is read from the
  checkpoint straight into the frozen-base shardings (bases.load_sharded_base) and trains."""
  import jax
  import jax.numpy as jnp
  import flax.linen as nn
  from mode_jax.model import Transformer, hf_io, presets
  cfg = presets.get("tiny", embed_dim=32, num_layers=2, num_heads=4, num_kv_heads=2,
                    head_dim=8, mlp_dim=64)
  params = nn.meta.unbox(Transformer(cfg).init(jax.random.key(3),
                                               jnp.ones((1, 8), jnp.int32))["params"])
  hf_io.save_hf_checkpoint(str(tmp_path / "base"), cfg, params)
  res, info, p = run(tmp_path / "run", {"checkpoint.hf_path": str(tmp_path / "base"),
                                        "mesh.shape": [1, 2, 1], "train.steps": 2}, devices=2)
  assert info["devices"] == 2 and np.isfinite(res["__loss__"])
  assert "trainable" in p.stdout
