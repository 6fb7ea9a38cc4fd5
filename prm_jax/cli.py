"""The `--config=FILE[:arg] --workdir=DIR` command line shared by prm_jax's entry points
(collect, policy.sft, pipeline), as `mode_jax.main` has it: a locked ml_collections config
(a misspelt override is an error), library INFO logs only with --verbosity."""

from __future__ import annotations

from typing import Callable


def run(job: Callable, default_config: str, default_workdir: str) -> None:
  """Defines the flags and runs `job(config, workdir)` under absl."""
  from absl import app, flags, logging
  from ml_collections import config_flags
  config_flags.DEFINE_config_file("config", default_config, "Config file.", lock_config=True)
  flags.DEFINE_string("workdir", default_workdir, "Output directory.")

  def main(argv):
    if len(argv) > 1:
      raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    if not flags.FLAGS["verbosity"].present:   # library INFO logs (orbax, seqio) only with -v 0
      logging.set_verbosity(logging.WARNING)
    job(flags.FLAGS.config, flags.FLAGS.workdir)
  app.run(main)


def config_path() -> str:
  """The --config file of the running command (without its ':arg')."""
  from absl import flags
  return flags.FLAGS["config"].config_filename
