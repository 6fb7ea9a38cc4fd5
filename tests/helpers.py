"""Helpers several test modules share (import as `import helpers`: pytest puts tests/ on the
path, beside conftest.py)."""

import os
import socket

import numpy as np
import pytest


def free_port() -> int:
  """A TCP port on 127.0.0.1 that was free a moment ago."""
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def rel_err(got, want) -> float:
  """max |got - want| / max |want| in float32 (the kernels' tolerance measure)."""
  got, want = np.asarray(got, np.float32), np.asarray(want, np.float32)
  return float(np.abs(got - want).max() / max(np.abs(want).max(), 1e-6))


def missing_install(reason: str):
  """Skips a test whose tool is not installed (with the install hint in `reason`); in CI
  (`.ci/run` sets MODE_JAX_CI=1 after installing everything) it fails instead: a skip there
  is a test nobody runs."""
  if os.environ.get("MODE_JAX_CI") == "1":
    pytest.fail(f"CI must install this: {reason}")
  pytest.skip(reason)

