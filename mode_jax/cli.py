"""The project's one command-line convention (absl flags; ml_collections config files where a
run has a config).

Every entry point with a config:

    python -m <module> --config=configs/X.py[:arg] --workdir=DIR --config.a.b=value

defined by `config_main(job, default_config, default_workdir)`: the config is locked (a
misspelt override is an error naming it), multi-host runs initialise `jax.distributed` from the
environment (`distributed_args`), JAX's persistent compilation cache is on, a SIGTERM'd run
saves and exits with status 143 (`StopRun`, `train.preemption`; the same command resumes), and
library logs are quiet: absl INFO only with `--verbosity=0`, and C++ / seqio noise goes to a log
file (`mode_jax.console`; MODE_JAX_VERBOSE=1 shows everything). Tools without
a config (reports, benchmarks) define absl flags on their own `flags.FlagValues` and parse them
with `parse_argv` (so `main(argv)` also runs in-process: tests, notebooks), or on the global
flags with `tool_main`. Nothing else on the command line: no argparse, no `--set k=v`.
"""

from __future__ import annotations

import logging as std_logging
import os
import sys
from typing import Callable, Optional, Sequence

from absl import app, flags, logging

from mode_jax import atomic_io, caches, console

# The project's commands keep library log noise off the terminal (`console`); a library
# import (tests, notebooks) is not affected.
console.install_for_main()


class StopRun(RuntimeError):
  """A run that stopped cleanly and can resume (e.g. `train.preemption.Preempted`): the
  command logs it and exits with `exit_code` instead of a traceback."""
  exit_code = 1


def quiet_libraries() -> None:
  """absl logs below WARNING and the chatty libraries' Python loggers below ERROR go; real
  warnings stay. Called by `config_main` / `main` unless --verbosity is given."""
  logging.set_verbosity(logging.WARNING)
  for name in ("jax._src.xla_bridge", "jax._src.compiler", "orbax", "tensorflow", "h5py",
               "matplotlib", "urllib3"):
    std_logging.getLogger(name).setLevel(std_logging.ERROR)


def distributed_args(env) -> Optional[dict]:
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
  """`jax.distributed.initialize` when the environment asks for several processes."""
  kw = distributed_args(env)
  if kw is not None:
    import jax
    jax.distributed.initialize(**kw)


def _quiet_unless_verbose() -> None:
  if not flags.FLAGS["verbosity"].present:   # library INFO logs (orbax, seqio) only with -v 0
    quiet_libraries()


def _key_flags(names) -> None:
  """Lists `names` under the running command in --help (not only --helpfull)."""
  for name in names:
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flags.FLAGS[name])


def config_main(job: Callable, default_config: str, default_workdir: str, *,
                resolve_job: Optional[Callable] = None) -> None:
  """Defines --config / --workdir and runs `job(config, workdir)` under absl.

  Args:
    job: `fn(config, workdir)`; or None with `resolve_job(config) -> fn` (mode_jax.main: the
      job is named by `config.job`).
    default_config, default_workdir: the flags' defaults.
  """
  # ml_collections only here: the tools without a config (benchmarks.kernels, train_step,
  # accelerator_report) run on bare accelerator machines that lack it.
  from ml_collections import config_flags
  cfg_flag = config_flags.DEFINE_config_file("config", default_config, "Experiment config file.",
                                             lock_config=True)
  workdir_flag = flags.DEFINE_string("workdir", default_workdir, "Directory for outputs.")
  _key_flags(("config", "workdir"))

  def _main(argv):
    if len(argv) > 1:
      raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    _quiet_unless_verbose()
    init_distributed(os.environ)
    caches.enable_compilation_cache()
    config = cfg_flag.value
    fn = job if job is not None else resolve_job(config)
    atomic_io.makedirs(workdir_flag.value)      # a local directory or a bucket (gs://...)
    try:
      fn(config, workdir_flag.value)
    except StopRun as e:   # e.g. SIGTERM on a spot VM: saved; the same command resumes
      logging.warning("%s", e)
      sys.exit(e.exit_code)
  app.run(_main)


def main(fn: Callable[[list], object]) -> None:
  """`app.run(fn)` for tools without a config (their flags are absl flags), library logs
  quiet unless --verbosity is given. What `fn` returns is the exit status only when it is an
  int (absl would print any other value and exit 1)."""
  def _main(argv):
    _quiet_unless_verbose()
    out = fn(argv)
    return out if isinstance(out, int) and not isinstance(out, bool) else None
  app.run(_main)


def parse_flags(define: Callable[[flags.FlagValues], None],
                argv: Sequence[str]) -> flags.FlagValues:
  """A fresh `FlagValues` holding `define`'s flags, parsed from `argv` (without the program
  name): a tool's `main(argv)` called in-process (tests, notebooks) without touching absl's
  global flags. A missing required flag or an unknown one is a `flags.Error` naming it."""
  fv = flags.FlagValues()
  define(fv)
  return parse_argv(fv, argv)


def tool_main(define: Callable[[flags.FlagValues], None],
              run: Callable[[flags.FlagValues, list], object]) -> None:
  """The `__main__` of a tool without a config: `define(flags.FLAGS)`, then under absl
  (--help lists the flags) `run(flags.FLAGS, positional args)` with quiet library logs."""
  before = set(flags.FLAGS)
  define(flags.FLAGS)
  _key_flags(sorted(set(flags.FLAGS) - before))
  main(lambda argv: run(flags.FLAGS, list(argv[1:])))


def parse_argv(fv: flags.FlagValues, argv: Optional[Sequence[str]] = None, *,
               positional: bool = False):
  """Parses `argv` (default: this command's arguments) into the flags defined on `fv` (a
  tool's own `flags.FlagValues`, so `main(argv)` can run several times in one process).

  `--help` prints the flags and exits 0; an unknown or missing required flag is a
  `flags.Error` naming it (exit 1 with the message on the command line).
  Returns:
    `fv`, or (`fv`, positional arguments) with `positional=True` (anything after `--` too).
  """
  from_cli = argv is None
  if from_cli:
    quiet_libraries()
  argv = list(sys.argv[1:] if from_cli else argv)
  if any(a in ("--help", "-h", "--helpfull", "-?") for a in argv):
    print(fv.get_help() or "(no flags)")
    sys.exit(0)
  try:
    rest = fv([sys.argv[0] if from_cli else "tool", *argv])[1:]
  except flags.Error as e:
    if not from_cli:
      raise
    sys.exit(f"{sys.argv[0]}: {e}\nPass --help to see the flags.")
  if rest and not positional:
    err = flags.Error(f"unexpected arguments: {rest}")
    if not from_cli:
      raise err
    sys.exit(f"{sys.argv[0]}: {err}")
  return (fv, rest) if positional else fv


def config_path() -> str:
  """The --config file of the running command (without its ':arg')."""
  return flags.FLAGS["config"].config_filename
