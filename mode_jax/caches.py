"""Where the project caches things: `cache_dir()` (converted pretrained models, rebuilt GGUF
vocabularies, compiled programs), and JAX's persistent compilation cache for the command-line
entry points (`mode_jax.main`, `mode_jax.experiments.compare`): a study trains many runs of
the same shapes (every seed, every per-task LoRA), and each would otherwise recompile its
train step and sampler (~40 s each for Gemma 3 270M on a 2-core CPU). Entries are keyed by the program and the jax version, so a stale
entry cannot change a result. Directory: $JAX_COMPILATION_CACHE_DIR, else
<cache dir>/jax; MODE_JAX_COMPILE_CACHE=0 turns it off."""

from __future__ import annotations

import os


def cache_dir() -> str:
  """Where converted artefacts go: $MODE_JAX_CACHE, else ~/.cache/mode_jax."""
  return os.environ.get("MODE_JAX_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                          "mode_jax")


def enable_compilation_cache(env=os.environ) -> "str | None":
  """Turns the cache on (programs that took >= 1 s to compile); returns its directory."""
  if env.get("MODE_JAX_COMPILE_CACHE", "1") == "0":
    return None
  import jax
  path = env.get("JAX_COMPILATION_CACHE_DIR") or os.path.join(cache_dir(), "jax")
  jax.config.update("jax_compilation_cache_dir", path)
  if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in env:
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
  return path
