"""A quiet terminal for the project's commands: library log noise goes to a log file, the
project's progress, tables, summaries and real warnings stay on the terminal.

TensorFlow (tf.data under seqio), XLA and sentencepiece write C++ logs straight to file
descriptor 2 (TensorFlow's absl C++ logging ignores TF_CPP_MIN_LOG_LEVEL before it is
initialised), and seqio warns once per task that it is not cached. `install()` routes fd 2
through a pipe: a line that matches `NOISE` goes to the log file, every other line to the real
stderr. Python warnings, errors and tracebacks are never filtered; neither are C++ warnings or
errors other than CUDA probing on a machine without a GPU.

The project's entry points install it when they run as `python -m ...` (`mode_jax.cli` calls
`install_for_main()` on import); importing the library (tests, notebooks) changes nothing.
MODE_JAX_VERBOSE=1 turns it off; the log file is named at exit when it holds anything.
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading
import time
from typing import Optional

from mode_jax.caches import cache_dir

PROJECT_PACKAGES = ("mode_jax", "prm_jax", "crs_jax", "benchmarks")

NOISE = re.compile("|".join([
    # absl C++ logging before initialisation (TensorFlow, jaxlib)
    r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR",
    # C++ INFO logs: oneDNN notice, CUDA driver probing, ...
    r"^I\d{4} [\d:.]+ +\d+ [\w.]+\.(cc|h):\d+\] ",
    # CUDA probing on a machine without a GPU (TensorFlow / XLA)
    r"^[EW]\d{4} [\d:.]+ +\d+ (cuda_platform|cuda_executor|cuda_diagnostics|cuda_dnn|cuda_fft|"
    r"cuda_blas|cudart_stub|gpu_device)\.cc:\d+\] ",
    # tf.data: evaluation reads one batch of a cached pipeline by design
    r"^W\d{4} [\d:.]+ +\d+ cache_dataset_ops\.cc:\d+\] The calling iterator did not fully read",
    # sentencepiece inside tensorflow_text, once per tokenizer op
    r"^normalizer\.cc\(\d+\) LOG\(INFO\) ",
    # seqio: every task of a mixture is uncached (the project's tasks never are)
    r"^W\d{4} [\d:.]+ +\d+ dataset_providers\.py:\d+\] Using an uncached FunctionDataset",
    r"^W\d{4} [\d:.]+ +\d+ utils\.py:\d+\] Task '.*' not cached so using",
]))


class FilteredStderr:
  """fd 2 through a pipe; `NOISE` lines to `log_path`, the rest to the real stderr."""

  def __init__(self, log_path: str):
    self.log_path, self.noise_lines = log_path, 0
    sys.stderr.flush()
    self.real = os.dup(2)
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)
    self.thread = threading.Thread(target=self._pump, args=(read,), daemon=True,
                                   name="stderr-filter")
    self.thread.start()
    atexit.register(self.close)

  def _pump(self, read: int) -> None:
    log = None
    with os.fdopen(read, "rb") as f:
      for line in f:                       # ends when every write end is closed
        if NOISE.search(line.decode("utf-8", "replace")):
          if log is None:
            os.makedirs(os.path.dirname(self.log_path), exist_ok=True)
            log = open(self.log_path, "ab")
          log.write(line)
          log.flush()
          self.noise_lines += 1
        else:
          os.write(self.real, line)
    if log is not None:
      log.close()

  def close(self) -> None:
    """Restores fd 2 (flushing what is in the pipe) and names the log file if it was used."""
    if self.real is None:
      return
    try:
      sys.stderr.flush()
    except (OSError, ValueError):
      pass
    os.dup2(self.real, 2)                  # the pipe's last write end in this process closes
    self.thread.join(timeout=10)
    if self.noise_lines:
      os.write(self.real, f"({self.noise_lines} library log lines in {self.log_path})\n"
               .encode())
    os.close(self.real)
    self.real = None


_INSTALLED: Optional[FilteredStderr] = None


def install(name: str = "mode_jax") -> Optional[FilteredStderr]:
  """Routes fd 2 through the filter (once per process; not with MODE_JAX_VERBOSE=1). The log
  is `<cache dir>/logs/<name>-<time>-<pid>.log`."""
  global _INSTALLED
  if _INSTALLED is None and os.environ.get("MODE_JAX_VERBOSE", "") != "1":
    stamp = time.strftime("%Y%m%d-%H%M%S")
    _INSTALLED = FilteredStderr(os.path.join(cache_dir(), "logs",
                                             f"{name}-{stamp}-{os.getpid()}.log"))
  return _INSTALLED


def install_for_main() -> Optional[FilteredStderr]:
  """`install()` when this process runs one of the project's modules as `python -m`."""
  spec = getattr(sys.modules.get("__main__"), "__spec__", None)
  name = getattr(spec, "name", "") or ""
  if name.split(".")[0] in PROJECT_PACKAGES:
    return install(name)
  return None
