"""Main entry point: `python -m mode_jax.main --config=configs/X.py --workdir=DIR`.

The config (an ml_collections file, locked: a misspelt override is an error) names the job in
`config.job`: a built-in (`sample_demo`, `train`, `mode_synthetic`, defined in
`mode_jax.train.jobs`) or "package.module:function" for jobs defined elsewhere
(configs/prm_arith.py uses "prm_jax.prm.train:prm_train"); `mode_jax.resolve` resolves it. The
command line is `mode_jax.cli`'s (distributed init, compilation cache, preemption exit code).
"""

from __future__ import annotations

from absl import app

from mode_jax import cli, resolve


def resolve_job(name: str):
  """The job function `config.job` names (see `mode_jax.resolve`); a usage error otherwise."""
  try:
    return resolve.resolve(name, resolve.JOBS, "config.job")
  except resolve.ResolveError as e:
    raise app.UsageError(str(e)) from None


if __name__ == "__main__":
  cli.config_main(None, "configs/default.py", "runs/default",
                  resolve_job=lambda config: resolve_job(config.job))
