"""Main entry point: `python -m mode_jax.main --config=configs/X.py --workdir=DIR`.

The config (an ml_collections file, locked: a misspelt override is an error) names the job in
`config.job`: a built-in (`sample_demo`, `train`, `mode_synthetic`, defined in
`mode_jax.train.jobs`) or "package.module:function" for jobs defined elsewhere
(configs/prm_arith.py uses "prm_jax.prm.train:prm_train"); `mode_jax.resolve` resolves it.
"""

from __future__ import annotations

import os

# TensorFlow's C++ warnings (tf.data cache notices, one per eval task) drown the progress
# lines; TF_CPP_MIN_LOG_LEVEL=0 brings them back.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import sys

from absl import app, flags, logging
from ml_collections import config_flags

from mode_jax import atomic_io, caches, resolve
from mode_jax.train import preemption

_CONFIG = config_flags.DEFINE_config_file("config", "configs/default.py",
                                          "Experiment config file.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", "runs/default", "Directory for outputs.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not flags.FLAGS["verbosity"].present:   # library INFO logs (orbax, seqio) only with -v 0
    logging.set_verbosity(logging.WARNING)
  init_distributed(os.environ)
  caches.enable_compilation_cache()
  config = _CONFIG.value
  job = resolve_job(config.job)
  atomic_io.makedirs(_WORKDIR.value)      # a local directory or a bucket (gs://...)
  try:
    job(config, _WORKDIR.value)
  except preemption.Preempted as e:   # SIGTERM on a spot VM: saved; the same command resumes
    logging.warning("%s", e)
    sys.exit(preemption.EXIT_CODE)


def distributed_args(env) -> "dict | None":
  """Arguments for jax.distributed.initialize from the environment (one process per host):
  JAX_COORDINATOR_ADDRESS (+ JAX_NUM_PROCESSES, JAX_PROCESS_ID; launch/gpu_multinode.sh sets
  them), or MODE_JAX_DISTRIBUTED=1 for the platform's auto-detection (TPU VMs, SLURM;
  launch/tpu_vm.sh sets it). None: a single process."""
  addr = env.get("JAX_COORDINATOR_ADDRESS")
  if addr:
    kw = {"coordinator_address": addr}
    for key, arg in (("JAX_NUM_PROCESSES", "num_processes"), ("JAX_PROCESS_ID", "process_id")):
      if env.get(key):
        try:
          kw[arg] = int(env[key])
        except ValueError:
          raise ValueError(f"environment variable {key}={env[key]!r} is not an integer") from None
    return kw
  return {} if env.get("MODE_JAX_DISTRIBUTED") == "1" else None


def init_distributed(env) -> None:
  kw = distributed_args(env)
  if kw is not None:
    import jax
    jax.distributed.initialize(**kw)


def resolve_job(name: str):
  """The job function `config.job` names (see `mode_jax.resolve`); a usage error otherwise."""
  try:
    return resolve.resolve(name, resolve.JOBS, "config.job")
  except resolve.ResolveError as e:
    raise app.UsageError(str(e)) from None


if __name__ == "__main__":
  app.run(main)
