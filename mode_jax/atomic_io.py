"""Atomic file and directory writes (a crash never leaves a half-written output behind), and
JSON reading whose errors name the file."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
from typing import Iterable, Iterator, Optional


@contextlib.contextmanager
def atomic_directory(path: str) -> Iterator[str]:
  """Yields a temp directory beside `path`; on success it replaces `path` (an existing one is
  moved aside first and deleted only after the new one is in place); on error it is removed."""
  parent = os.path.dirname(os.path.abspath(path)) or "."
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=".tmp_", dir=parent)
  try:
    yield tmp
    if os.path.exists(path):
      old = path.rstrip("/") + ".old"
      shutil.rmtree(old, ignore_errors=True)
      os.replace(path, old)
      os.replace(tmp, path)
      shutil.rmtree(old, ignore_errors=True)
    else:
      os.replace(tmp, path)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise


@contextlib.contextmanager
def atomic_file(path: str, mode: str = "w") -> Iterator:
  """Opens a temp file beside `path`, renamed over `path` when the block succeeds."""
  d = os.path.dirname(os.path.abspath(path))
  os.makedirs(d, exist_ok=True)
  fd, tmp = tempfile.mkstemp(prefix=".tmp_", dir=d)
  try:
    with os.fdopen(fd, mode) as f:
      yield f
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise


def write_jsonl_atomic(path: str, rows: Iterable) -> None:
  with atomic_file(path) as f:
    for r in rows:
      f.write(json.dumps(r) + "\n")


def write_json_atomic(path: str, obj) -> None:
  with atomic_file(path) as f:
    json.dump(obj, f, indent=2)


def read_json(path: str, error=ValueError):
  """Parsed JSON of `path`; a missing file or invalid JSON raises `error` naming the file."""
  if not os.path.isfile(path):
    raise error(f"{path}: missing")
  try:
    with open(path) as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise error(f"{path}: invalid JSON ({e})") from None


def recover_jsonl(path: str) -> list:
  """The complete lines of an append-only JSONL file, parsed; a torn last line (no newline, or
  not JSON: a crash mid-append) is cut off the file. [] when the file does not exist."""
  if not os.path.exists(path):
    return []
  with open(path, "rb") as f:
    data = f.read()
  out, pos = [], 0
  while pos < len(data):
    nl = data.find(b"\n", pos)
    if nl < 0:
      break
    try:
      out.append(json.loads(data[pos:nl]))
    except json.JSONDecodeError:
      break
    pos = nl + 1
  if pos < len(data):
    logging.warning("%s: dropping a torn last line (%d bytes)", path, len(data) - pos)
    with open(path, "r+b") as f:
      f.truncate(pos)
  return out


def jsonl_records(path: str, errors: Optional[list] = None,
                  error_cls: type = ValueError) -> Iterator[tuple[int, dict]]:
  """(line number, object) per non-empty line of a JSONL file. A malformed line raises
  `error_cls` naming the file and line or, when `errors` is a list, is appended to it as
  {"line", "error"} and skipped."""
  with open(path, encoding="utf-8") as f:
    for n, line in enumerate(f, 1):
      if not line.strip():
        continue
      try:
        rec = json.loads(line)
        msg = None if isinstance(rec, dict) else f"{path}:{n}: expected an object"
      except json.JSONDecodeError as e:
        msg = f"{path}:{n}: invalid JSON ({e.msg})"
      if msg is None:
        yield n, rec
      elif errors is None:
        raise error_cls(msg)
      else:
        errors.append({"line": n, "error": msg})
