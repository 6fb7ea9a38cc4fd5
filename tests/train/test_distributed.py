"""Multi-host correctness on one machine: two processes on 127.0.0.1 joined by
`jax.distributed.initialize` (CPU, gloo collectives) run FSDP train steps with the parameters
sharded across the two hosts, agree with one process holding both devices, and gather the
trained parameters back to the host (`train.evaluate.host`, a collective: a plain device_get
fails on arrays spanning hosts)."""

import os
import subprocess
import sys

import numpy as np

import helpers

WORKER = os.path.join(os.path.dirname(__file__), "distributed_worker.py")


def _env(devices: int) -> dict:
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  env["JAX_PLATFORMS"] = "cpu"
  return env


def test_two_processes_agree_with_one(tmp_path):
  single = tmp_path / "single.npz"
  subprocess.run([sys.executable, WORKER, "0", "1", "0", str(tmp_path / "wd1"), str(single)],
                 env=_env(2), check=True, timeout=300)
  port, multi = helpers.free_port(), tmp_path / "multi.npz"
  procs = [subprocess.Popen([sys.executable, WORKER, str(i), "2", str(port),
                             str(tmp_path / "wd2"), str(multi)], env=_env(1),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
           for i in range(2)]
  outs = [p.communicate(timeout=300)[0] for p in procs]
  for p, out in zip(procs, outs):
    assert p.returncode == 0, out[-3000:]
  a, b = np.load(single), np.load(multi)
  assert int(a["__devices__"]) == int(b["__devices__"]) == 2
  assert len(a["__loss__"]) == 4
  np.testing.assert_allclose(b["__loss__"], a["__loss__"], rtol=1e-5)
  assert a["__loss__"][2] < a["__loss__"][0]             # batch 0 again, after two updates
  keys = [k for k in a.files if not k.startswith("__")]
  assert keys and sorted(keys) == sorted(k for k in b.files if not k.startswith("__"))
  for k in keys:
    np.testing.assert_allclose(b[k], a[k], rtol=1e-4, atol=1e-6, err_msg=k)
