"""Preemption: spot / preemptible TPU and GPU VMs send SIGTERM shortly before they go away.

`PreemptionWatch` installs a SIGTERM handler for the duration of a run; the loop asks
`should_stop(step)` at every step boundary and, when it is true, saves a checkpoint of that
step, waits for it, and raises `Preempted`; `mode_jax.main` exits with status 143 (128 +
SIGTERM), and the same command resumes from that step. On several hosts the decision goes
through JAX's preemption sync point (`multihost_utils.reached_preemption_sync_point`, fed by
the coordination service that `jax.distributed.initialize` starts), so every host stops at the
same step; one process watches its own signal flag.
"""

from __future__ import annotations

import signal
import threading

import jax

from mode_jax import cli

EXIT_CODE = 128 + signal.SIGTERM   # 143, what a shell reports for a SIGTERM'd process


class Preempted(cli.StopRun):
  """Training stopped at a step boundary after SIGTERM; the checkpoint of that step is saved."""
  exit_code = EXIT_CODE

  def __init__(self, step: int, directory: str):
    super().__init__(f"preempted (SIGTERM): checkpoint of step {step} saved in {directory}; "
                     f"run the same command to resume")
    self.step = step


class PreemptionWatch:
  """Context manager: SIGTERM sets a flag (the previous handler is restored on exit)."""

  def __init__(self):
    self._flag = threading.Event()
    self._previous = None

  def __enter__(self):
    if threading.current_thread() is threading.main_thread():
      self._previous = signal.signal(signal.SIGTERM, lambda *_: self._flag.set())
    return self

  def __exit__(self, *exc):
    if self._previous is not None:
      signal.signal(signal.SIGTERM, self._previous)
    return False

  def should_stop(self, step: int) -> bool:
    """Whether to save and stop after `step`: this process got SIGTERM, or (several hosts) the
    coordination service reached its preemption sync point."""
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils
      try:
        return bool(multihost_utils.reached_preemption_sync_point(step)) or self._flag.is_set()
      except RuntimeError:   # no preemption service (e.g. not started by jax.distributed)
        return self._flag.is_set()
    return self._flag.is_set()
