"""RecLLM entry point: `python -m crs_jax.main --config=configs/crs_synthetic.py --workdir=DIR`.

The same command line as `mode_jax.main` (`mode_jax.cli`: locked ml_collections config,
overrides with --config.x=y, resumable workdir); the config's job is `crs_jax.job:crs_synthetic`.
"""

from mode_jax import cli, main as mode_main

if __name__ == "__main__":
  cli.config_main(None, "configs/crs_synthetic.py", "runs/crs",
                  resolve_job=lambda config: mode_main.resolve_job(config.job))
