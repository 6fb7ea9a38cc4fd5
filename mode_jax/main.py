"""Main entry point: `python -m mode_jax.main --config=configs/X.py --workdir=DIR`.

The config (an ml_collections file, locked: a misspelt override is an error) names the job in
`config.job`. Jobs: `sample_demo` (build/load a model, HF round trip, sample), `train`,
`mode_synthetic`, or "package.module:function" for jobs defined elsewhere (configs/prm_arith.py
uses "prm_jax.prm.train:prm_train").
"""

from __future__ import annotations

import json
import os
import time

from absl import app, flags, logging
from ml_collections import config_flags

from mode_jax.atomic_io import write_jsonl_atomic

_CONFIG = config_flags.DEFINE_config_file("config", "configs/default.py",
                                          "Experiment config file.", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", "runs/default", "Directory for outputs.")


def sample_demo(config, workdir: str) -> dict:
  """Builds (or loads) a model, checks the HF round trip, samples; returns a summary dict."""
  import flax.linen as nn
  import jax
  import jax.numpy as jnp
  import numpy as np

  from mode_jax.data.vocab import make_vocab
  from mode_jax.model import Transformer, hf_io, presets, sampling

  m = config.model
  overrides = dict(dtype=m.dtype, param_dtype=m.param_dtype, remat=m.remat)
  if config.checkpoint.hf_path:
    cfg, params = hf_io.load_hf_checkpoint(config.checkpoint.hf_path, dtype=m.param_dtype,
                                           scan_layers=m.scan_layers,
                                           config_overrides=overrides)
    source = config.checkpoint.hf_path
  else:
    cfg = presets.get(m.name, scan_layers=m.scan_layers, **overrides)
    variables = Transformer(cfg).init(jax.random.key(config.seed), jnp.ones((1, 8), jnp.int32))
    params = nn.meta.unbox(variables["params"])
    source = f"preset {m.name} (random init, seed {config.seed})"
  logging.info("model: %s, %.2fM parameters", source, cfg.num_params() / 1e6)

  hf_dir = os.path.join(workdir, "hf_checkpoint")
  hf_io.save_hf_checkpoint(hf_dir, cfg, params)
  cfg2, params2 = hf_io.load_hf_checkpoint(hf_dir, dtype=m.param_dtype,
                                           scan_layers=m.scan_layers,
                                           config_overrides=overrides)
  same = jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.array_equal(a, b)), params, params2))
  if not same:
    raise RuntimeError(f"HF round trip through {hf_dir} changed the parameters")

  vocab = make_vocab(config.vocab.kind, config.vocab.path or None)
  s = config.sampling
  prompts = [list(vocab.encode(p)) for p in s.prompts for _ in range(s.num_samples)]
  sampler = sampling.Sampler(cfg2, params2, vocab=vocab)
  kw = dict(max_new_tokens=s.max_new_tokens, temperature=s.temperature, top_k=s.top_k,
            top_p=s.top_p, stop_strings=tuple(s.stop_strings), rng=config.seed)
  sampler.generate(prompts, **kw)  # compile
  t0 = time.perf_counter()
  out = sampler.generate(prompts, **kw)
  dt = time.perf_counter() - t0
  rows = []
  for i, text in enumerate(out.texts):
    rows.append(dict(prompt=s.prompts[i // s.num_samples], completion=text,
                     num_tokens=int(out.lengths[i]),
                     logprob=float(np.sum(out.logprobs[i, :out.lengths[i]]))))
    print(f"[{i}] {rows[-1]['prompt']!r} -> {text!r}")
  write_jsonl_atomic(os.path.join(workdir, "samples.jsonl"), rows)
  summary = dict(source=source, params=cfg.num_params(), hf_round_trip_exact=same,
                 samples=len(rows), generated_tokens=int(out.lengths.sum()),
                 tokens_per_s=float(out.lengths.sum() / dt))
  print(json.dumps(summary))
  return summary


def _train(config, workdir):
  from mode_jax.train import jobs
  return jobs.train_job(config, workdir)


def _mode_synthetic(config, workdir):
  from mode_jax.train import jobs
  return jobs.mode_synthetic(config, workdir)


JOBS = {"sample_demo": sample_demo, "train": _train, "mode_synthetic": _mode_synthetic}


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  if not flags.FLAGS["verbosity"].present:   # library INFO logs (orbax, seqio) only with -v 0
    logging.set_verbosity(logging.WARNING)
  init_distributed(os.environ)
  config = _CONFIG.value
  job = resolve_job(config.job)
  os.makedirs(_WORKDIR.value, exist_ok=True)
  job(config, _WORKDIR.value)


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
  """A name in JOBS, or "package.module:function" for jobs other packages define (e.g.
  "prm_jax.prm.train:prm_train"), imported here so mode_jax never imports them itself."""
  if name in JOBS:
    return JOBS[name]
  if ":" in name:
    import importlib
    mod, _, fn = name.partition(":")
    try:
      return getattr(importlib.import_module(mod), fn)
    except (ImportError, AttributeError) as e:
      raise app.UsageError(f"config.job={name!r}: cannot load it ({e})") from None
  raise app.UsageError(f"config.job={name!r}; known jobs: {sorted(JOBS)} or 'module:function'")


if __name__ == "__main__":
  app.run(main)
