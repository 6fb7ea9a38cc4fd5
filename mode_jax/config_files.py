"""Loading ml_collections config files by path (configs are files, not an importable package,
so a config that builds on another loads it from beside itself)."""

from __future__ import annotations

import ast
import importlib.util
import os
from types import ModuleType
from typing import Sequence


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


def load_config(spec: str, overrides: Sequence[str] = ()):
  """`path[:arg]` -> the file's `get_config(arg)` with `a.b=value` overrides applied (values
  are Python literals, else strings; a list given for a tuple field becomes a tuple). A key the
  config lacks is a KeyError naming it (configs are data: no new keys by accident)."""
  path, _, arg = spec.partition(":")
  module = load_module(path)
  cfg = module.get_config(arg) if arg else module.get_config()
  for item in overrides:
    key, sep, raw = item.partition("=")
    if not sep:
      raise ValueError(f"override {item!r}: expected key=value")
    try:
      value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
      value = raw
    *parents, leaf = key.split(".")
    node = cfg
    for k in parents:
      node = node[k]
    if leaf not in node:
      raise KeyError(f"override {key}: the config {path} has no field {leaf!r}")
    if isinstance(value, list) and isinstance(node[leaf], tuple):
      value = tuple(value)
    node[leaf] = value
  return cfg
