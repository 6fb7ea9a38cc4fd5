"""`mode_jax.resolve`: config.job / config.data.kind name built-ins or "module:function", and a
bad name is an error naming the field; nothing is registered by importing a package."""

import subprocess
import sys

import pytest

from mode_jax import resolve


def test_builtins_and_module_function_resolve():
  from mode_jax.train import data_kinds, jobs
  assert resolve.resolve("train", resolve.JOBS, "config.job") is jobs.train_job
  assert resolve.resolve("sample_demo", resolve.JOBS, "config.job") is jobs.sample_demo
  assert resolve.resolve("sni", resolve.DATA_KINDS, "config.data.kind") is data_kinds.sni
  from prm_jax.policy import sft
  got = resolve.resolve("prm_jax.policy.sft:build_arith_data", resolve.DATA_KINDS, "k")
  assert got is sft.build_arith_data
  assert resolve.label("prm_jax.policy.sft:build_arith_data") == "build_arith_data"
  assert resolve.label("sni") == "sni"


@pytest.mark.parametrize("spec,match", [
    ("arith", r"config.data.kind='arith': expected one of \['pretrain', 'sni', 'synthetic'\]"),
    ("prm_jax.nope:f", "cannot load 'prm_jax.nope:f'"),
    ("prm_jax.policy.sft:nope", "cannot load"),
    ("prm_jax.policy.sft:TASK", "is not callable"),
    ("module:", "expected one of"),
])
def test_bad_names_are_errors_naming_the_field(spec, match):
  with pytest.raises(resolve.ResolveError, match=match):
    resolve.resolve(spec, resolve.DATA_KINDS, "config.data.kind")


def test_importing_the_packages_registers_nothing():
  """The trainer's built-in tables are plain data; importing prm_jax's policy does not add a
  data kind (it used to mutate jobs.DATA_KINDS)."""
  code = ("import mode_jax.resolve as r; before = dict(r.DATA_KINDS), dict(r.JOBS); "
          "import prm_jax.policy.sft, prm_jax.prm.train; "
          "assert (dict(r.DATA_KINDS), dict(r.JOBS)) == before; "
          "import mode_jax.train.jobs as j; assert not hasattr(j, 'DATA_KINDS')")
  r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
  assert r.returncode == 0, r.stderr[-2000:]
