"""RecLLM entry point: `python -m crs_jax.main [--config=configs/crs_gemma3.py:cpu] [--workdir=DIR]`.

The same command line as `mode_jax.main` (`mode_jax.cli`: locked ml_collections config,
overrides with --config.x=y, resumable workdir); the config's job is `crs_jax.job:crs_synthetic`.
By default RecLLM runs on Gemma 3 270M at a CPU budget (`configs/crs_gemma3.py:cpu`, workdir
runs/crs_gemma3_cpu, the chat page's default); `configs/crs_synthetic.py` is the 2.2M decoder
trained in the workdir.
"""

from mode_jax import cli, main as mode_main

if __name__ == "__main__":
  cli.config_main(None, "configs/crs_gemma3.py:cpu", "runs/crs_gemma3_cpu",
                  resolve_job=lambda config: mode_main.resolve_job(config.job))
