"""Runs a small training job from the command line (tests run it in subprocesses so that a
SIGKILL or a forced device count cannot affect the test process).

    python tests/train/trainer_harness.py WORKDIR OUT.npz '{"train.steps": 6, ...}'
"""

import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", ".."))


def small_config(overrides: dict):
  import importlib.util
  spec = importlib.util.spec_from_file_location(
      "mode_synthetic", os.path.join(os.path.dirname(__file__), "..", "..", "configs",
                                     "mode_synthetic.py"))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  c = mod.get_config()
  c.model.overrides = dict(embed_dim=32, num_layers=2, num_heads=4, num_kv_heads=2,
                           head_dim=8, mlp_dim=64)
  c.data.num_train, c.data.num_eval = 40, 5
  c.data.inputs_len, c.data.targets_len = 96, 16
  c.adapter.experts, c.adapter.rank = 2, 4
  c.train.steps, c.train.batch_size, c.train.log_every = 6, 4, 1
  c.train.ckpt_every, c.train.warmup_steps, c.train.async_ckpt = 2, 2, False
  for k, v in overrides.items():
    node = c
    *parents, leaf = k.split(".")
    for p in parents:
      node = node[p]
    node[leaf] = tuple(v) if isinstance(v, list) else v
  return c


def main():
  workdir, out_path, overrides = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
  import jax
  import numpy as np
  from mode_jax.train import run
  from mode_jax.train import preemption
  c = small_config(overrides)
  try:
    res = run.run_training(c, workdir, log=lambda s: print(s, flush=True))
  except preemption.Preempted as e:
    print(e, flush=True)
    sys.exit(preemption.EXIT_CODE)
  leaves = jax.tree_util.tree_flatten_with_path(jax.device_get(res.state.params))[0]
  arrays = {jax.tree_util.keystr(p): np.asarray(v) for p, v in leaves}
  arrays["__loss__"] = np.asarray(res.metrics["loss"])
  arrays["__start__"] = np.asarray(res.start_step)
  spec = str(jax.tree.leaves(res.state.params)[0].sharding.spec) if leaves else ""
  np.savez(out_path, **arrays)
  with open(out_path + ".json", "w") as f:
    json.dump({"devices": jax.device_count(), "first_param_spec": spec,
               "specs": {jax.tree_util.keystr(p): str(v.sharding.spec) for p, v in
                         jax.tree_util.tree_flatten_with_path(res.state.params)[0]},
               "opt_specs": sorted({str(getattr(v, "sharding", None) and v.sharding.spec)
                                    for v in jax.tree.leaves(res.state.opt_state)})}, f)


if __name__ == "__main__":
  main()
