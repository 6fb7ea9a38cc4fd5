"""What the anchor workers (`llama_cpp_worker`, `gemma_lib_worker`) share: they run in other
virtual environments, so this module uses the standard library only.

    median_s, out = worker_io.timed(run, repeats)     # warm-up run(0), then run(1..repeats)
    worker_io.main(__doc__, main)                      # --job=PATH, or the docstring
"""

import statistics
import sys
import time


def timed(run, repeats: int):
  """(median seconds of run(1..repeats), the last run's output), after a warm-up run(0)."""
  run(0)
  times, out = [], None
  for r in range(repeats):
    t0 = time.perf_counter()
    out = run(r + 1)
    times.append(time.perf_counter() - t0)
  return statistics.median(times), out


def main(doc: str, fn) -> None:
  """Calls fn(job path) for `--job=PATH`; prints `doc` for --help (exit 0) or bad use (2)."""
  if len(sys.argv) != 2 or not sys.argv[1].startswith("--job="):
    print(doc)
    sys.exit(0 if sys.argv[1:] in (["--help"], ["-h"]) else 2)
  fn(sys.argv[1][len("--job="):])
