"""RecLLM entry point: `python -m crs_jax.main --config=configs/crs_synthetic.py --workdir=DIR`.

The same command line as `mode_jax.main` (locked ml_collections config, overrides with
--config.x=y, resumable workdir); the config's job is `crs_jax.job:crs_synthetic`.
"""

from absl import app

from mode_jax import main as mode_main

if __name__ == "__main__":
  app.run(mode_main.main)
