"""Items of a dataset report: JSONL records with their text under "_text"."""

from __future__ import annotations

import os
from typing import Optional, Sequence

import numpy as np

from mode_jax.atomic_io import jsonl_records


def text_of(rec: dict, fields: Sequence[str]) -> Optional[str]:
  """The `fields` values of `rec` joined (a list of strings, e.g. a record's `steps`, joined
  without separator); None when a field is missing or not text."""
  parts = []
  for f in fields:
    v = rec.get(f)
    if isinstance(v, list) and all(isinstance(x, str) for x in v):
      parts.append("".join(v))
    elif isinstance(v, (str, int, float)) and not isinstance(v, bool):
      parts.append(str(v))
    else:
      return None
  return "".join(parts)


def read_items(path: str, text_fields: Sequence[str], errors: list) -> list[dict]:
  """Items of a JSONL file with their text under "_text"; bad lines go to `errors` as
  "file:line: why" and are skipped."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f"{path}: no such file")
  bad: list = []
  items = []
  for n, rec in jsonl_records(path, bad):
    t = text_of(rec, text_fields)
    if t is None:
      bad.append({"line": n, "error": f"{path}:{n}: field(s) {','.join(text_fields)!r} "
                                      "missing or not text"})
      continue
    items.append(dict(rec, _text=t))
  errors.extend(e["error"] for e in sorted(bad, key=lambda e: e["line"]))
  return items


def subsample(items: list, m: int, seed: int) -> list:
  """`m` items drawn without replacement in their original order (all when there are fewer)."""
  if len(items) <= m:
    return list(items)
  idx = np.sort(np.random.default_rng(seed).choice(len(items), m, replace=False))
  return [items[i] for i in idx]
