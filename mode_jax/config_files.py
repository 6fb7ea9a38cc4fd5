"""Loading ml_collections config files by path (configs are files, not an importable package,
so a config that builds on another loads it from beside itself)."""

from __future__ import annotations

import importlib.util
import os
from types import ModuleType


def load_module(path: str, name: str = "") -> ModuleType:
  """The config file at `path` as a module (it is executed; `get_config` is on it)."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"config file {path!r} not found")
  spec = importlib.util.spec_from_file_location(
      name or os.path.splitext(os.path.basename(path))[0] + "_cfg", path)
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod


def sibling(this_file: str, name: str) -> ModuleType:
  """The config `name`.py in the directory of `this_file` (a config's own __file__)."""
  return load_module(os.path.join(os.path.dirname(os.path.abspath(this_file)), f"{name}.py"))
