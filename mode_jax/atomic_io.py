"""Atomic file and directory writes (a crash never leaves a half-written output behind), and
JSON reading whose errors name the file.

Every path here may be a bucket (`gs://bucket/run`, `s3://...`: whatever `etils.epath`
supports); those go through epath (its tf.io.gfile or fsspec backend), local paths through
`os`. An object store writes an object only when it is complete, so a file written to a
temporary name and then renamed stays atomic there too; a directory is built locally and then
uploaded file by file (object stores have no directory rename: a crash mid-upload can leave
a partial directory, which is written again by the next run).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from typing import Iterable, Iterator, Optional

from etils import epath

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_remote(path) -> bool:
  """True for a URL-style path (gs://, s3://, ...), which must not go through os.path."""
  return bool(_SCHEME.match(os.fspath(path)))


def makedirs(path) -> None:
  """`os.makedirs(path, exist_ok=True)` for local and bucket paths."""
  epath.Path(path).mkdir(parents=True, exist_ok=True)


def exists(path) -> bool:
  """Whether `path` exists (local or a bucket)."""
  return epath.Path(path).exists()


@contextlib.contextmanager
def atomic_directory(path: str) -> Iterator[str]:
  """Yields a local temp directory to fill; on success it replaces `path` (an existing one is
  moved aside first and deleted only after the new one is in place); on error it is removed.
  A bucket `path` is replaced by uploading the finished directory (module docstring)."""
  if is_remote(path):
    tmp = tempfile.mkdtemp(prefix=".tmp_")
    try:
      yield tmp
      _upload_directory(tmp, epath.Path(path))
    finally:
      shutil.rmtree(tmp, ignore_errors=True)
    return
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


def _upload_directory(local: str, dest: epath.Path) -> None:
  if dest.exists():
    dest.rmtree()
  for root, _, files in os.walk(local):
    rel = os.path.relpath(root, local)
    target = dest if rel == "." else dest / rel
    target.mkdir(parents=True, exist_ok=True)
    for name in sorted(files):
      epath.Path(os.path.join(root, name)).copy(target / name, overwrite=True)


def download(src: str, local: str) -> None:
  """Copies the directory tree `src` (a bucket or local path) into the local dir `local`."""
  root = epath.Path(src)
  if not root.is_dir():
    raise FileNotFoundError(f"{src}: no such directory")
  for d, _, files in root.walk():
    rel = os.path.relpath(os.fspath(d), os.fspath(root)) if d != root else "."
    os.makedirs(os.path.join(local, rel), exist_ok=True)
    for name in files:
      (epath.Path(d) / name).copy(epath.Path(local) / rel / name, overwrite=True)


@contextlib.contextmanager
def atomic_file(path: str, mode: str = "w") -> Iterator:
  """Opens a temp file beside `path`, renamed over `path` when the block succeeds."""
  if is_remote(path):
    dest = epath.Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.parent / f".tmp_{uuid.uuid4().hex}_{dest.name}"
    try:
      with tmp.open(mode) as f:
        yield f
      tmp.replace(dest)
    except BaseException:
      if tmp.exists():
        tmp.unlink()
      raise
    return
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


def append_line(path: str, line: str) -> None:
  """Appends `line` + newline: an append on a local file; on a bucket (objects cannot be
  appended to) the file is rewritten atomically with the line added."""
  if not is_remote(path):
    with open(path, "a") as f:
      f.write(line + "\n")
    return
  p = epath.Path(path)
  old = p.read_bytes() if p.exists() else b""
  with atomic_file(path, "wb") as f:
    f.write(old + line.encode() + b"\n")


def write_jsonl_atomic(path: str, rows: Iterable) -> None:
  """Writes `rows` as JSON lines to `path` atomically (temp file, then rename)."""
  with atomic_file(path) as f:
    for r in rows:
      f.write(json.dumps(r) + "\n")


def write_json_atomic(path: str, obj, default=None) -> None:
  """Writes `obj` as indented JSON to `path` atomically (temp file, then rename); `default` as
  `json.dump`'s (e.g. float for numpy scalars)."""
  with atomic_file(path) as f:
    json.dump(obj, f, indent=2, default=default)


def read_json(path: str, error=ValueError):
  """Parsed JSON of `path`; a missing file or invalid JSON raises `error` naming the file."""
  if not epath.Path(path).is_file():
    raise error(f"{path}: missing")
  try:
    with epath.Path(path).open() as f:
      return json.load(f)
  except json.JSONDecodeError as e:
    raise error(f"{path}: invalid JSON ({e})") from None


def recover_jsonl(path: str) -> list:
  """The complete lines of an append-only JSONL file, parsed; a torn last line (no newline, or
  not JSON: a crash mid-append) is cut off the file. [] when the file does not exist."""
  if not epath.Path(path).exists():
    return []
  data = epath.Path(path).read_bytes()
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
    if is_remote(path):
      with atomic_file(path, "wb") as f:
        f.write(data[:pos])
    else:
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
