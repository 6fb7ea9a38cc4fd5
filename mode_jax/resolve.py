"""How a config names code: the one place `config.job` and `config.data.kind` are resolved.

Both fields take a short built-in name (the tables below) or "package.module:function" for code
defined elsewhere, imported only when a run asks for it. Nothing registers itself at import
time, so `mode_jax` never imports the packages built on it (prm_jax, crs_jax) and a config file
says exactly which function runs:

    c.job = "train"                                        # built-in job
    c.job = "prm_jax.prm.train:prm_train"                  # a job another package defines
    c.data.kind = "sni"                                    # built-in data kind
    c.data.kind = "prm_jax.policy.sft:build_arith_data"    # a data kind another package defines

A job is `fn(config, workdir) -> dict` (the run's summary). A data kind is
`fn(dcfg, vocab, workdir) -> (train task names, eval task names, data.tasks.TaskIdTable)`, the
seqio tasks registered by the call itself (`mode_jax.data.tasks.make_*`).
"""

from __future__ import annotations

import importlib
from typing import Callable, Mapping

# Built-in jobs of `python -m mode_jax.main` (config.job).
JOBS = {
    "sample_demo": "mode_jax.train.jobs:sample_demo",       # build / load, HF round trip, sample
    "train": "mode_jax.train.jobs:train_job",               # one training run, then evaluation
    "mode_synthetic": "mode_jax.train.jobs:mode_synthetic",  # the embedded default (`make run`)
}

# Built-in data kinds of the trainer (config.data.kind).
DATA_KINDS = {
    "synthetic": "mode_jax.train.data_kinds:synthetic",     # the synthetic multi-task suite
    "sni": "mode_jax.train.data_kinds:sni",                 # Super-NaturalInstructions files
    "pretrain": "mode_jax.train.data_kinds:pretrain",       # generic text for the tiny base
}


class ResolveError(ValueError):
  """A config field names no known built-in and no importable "module:function"."""


def resolve(spec: str, builtins: Mapping[str, str], field: str) -> Callable:
  """The function `spec` names: a key of `builtins` or "package.module:function".

  Raises ResolveError naming `field` (e.g. "config.job") and the known names.
  """
  target = builtins.get(spec, spec)
  mod, sep, fn = target.partition(":")
  if not sep or not mod or not fn:
    raise ResolveError(f"{field}={spec!r}: expected one of {sorted(builtins)} or "
                       f"'package.module:function'")
  try:
    out = getattr(importlib.import_module(mod), fn)
  except (ImportError, AttributeError) as e:
    raise ResolveError(f"{field}={spec!r}: cannot load {target!r} ({e})") from None
  if not callable(out):
    raise ResolveError(f"{field}={spec!r}: {target!r} is not callable")
  return out


def label(spec: str) -> str:
  """A short name for outputs (mixture names, logs): the built-in name or the function's."""
  return spec.rpartition(":")[2]
