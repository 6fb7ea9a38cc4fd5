"""Checkpoint tensors read on demand, slice by slice, in the Linen layout.

`load_hf_checkpoint(..., shardings=...)` places every parameter with
`jax.make_array_from_callback`, which asks for one index per addressable device. A `LazyTensor`
answers such an index by reading from the safetensors file (`safe_open(...).get_slice`) only
the rows and columns that index needs, so each host of a multi-host slice reads what its own
devices hold and no host ever holds a whole 8B model. `LazyStack` does the same for the
layer-stacked (`scan_layers`) parameters.

The HF layout of a projection is [out, in] with `out` = prod(linen_shape[n_in:]) and `in` =
prod(linen_shape[:n_in]); the Linen array is its transpose reshaped. A Linen index is answered
exactly when, within each of the two groups, only the group's first dimension is sliced (the
case of every sharding the logical rules produce: heads, mlp, embed or vocab); other dims are
read whole along the group's first dimension's range and cut in memory (correct, reads more).
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from safetensors import SafetensorError


def _bounds(idx, shape: tuple) -> list[tuple[int, int]]:
  """(start, stop) per dimension of a basic index (slices with step 1, as sharding gives)."""
  idx = idx if isinstance(idx, tuple) else (idx,)
  if any(i is Ellipsis for i in idx):
    k = idx.index(Ellipsis)
    idx = idx[:k] + (slice(None),) * (len(shape) - len(idx) + 1) + idx[k + 1:]
  idx = idx + (slice(None),) * (len(shape) - len(idx))
  out = []
  for s, n in zip(idx, shape):
    if not isinstance(s, slice):
      raise TypeError(f"LazyTensor: only slices are supported, got {s!r}")
    start, stop, step = s.indices(n)
    if step != 1:
      raise TypeError(f"LazyTensor: slice step must be 1, got {s!r}")
    out.append((start, max(start, stop)))
  return out


def _group_range(bounds: list, dims: tuple) -> slice:
  """The flat range of a row-major group of dims that covers the first dim's bounds."""
  inner = int(np.prod(dims[1:])) if len(dims) > 1 else 1
  return slice(bounds[0][0] * inner, bounds[0][1] * inner)


class _Lazy:
  shape: tuple

  @property
  def ndim(self) -> int:
    return len(self.shape)

  def __array__(self, dtype=None, copy=None):
    out = self[...]
    return out if dtype is None else out.astype(dtype)


class LazyTensor(_Lazy):
  """One tensor of a safetensors file in Linen shape; `t[idx]` reads only what idx needs.

  `handle()` returns the open file; `n_in` is the layout conversion of `hf_io.tensor_specs`
  (0: same layout; -1: the file holds it flat; k >= 1: the file holds [out, in] of the
  transposed array whose first k Linen dims are the input). `on_read(nbytes)` is called with
  the bytes of every read (per-host read accounting). A read that fails raises `error` naming
  `file` and the tensor."""

  def __init__(self, handle: Callable, file: str, name: str, linen_shape: tuple, n_in: int,
               dtype, on_read: Callable[[int], None] | None = None, error=ValueError):
    self._handle, self.file, self.name, self.n_in = handle, file, name, n_in
    self.shape, self.dtype = tuple(linen_shape), np.dtype(dtype)
    self._on_read, self._error = on_read, error

  def _read(self, hf_index) -> np.ndarray:
    try:
      arr = self._handle().get_slice(self.name)[hf_index]
    except (SafetensorError, OSError, ValueError) as e:
      raise self._error(f"{self.file}: tensor {self.name!r} cannot be read ({e})") from e
    if self._on_read is not None:
      self._on_read(arr.nbytes)
    return arr

  def __getitem__(self, idx) -> np.ndarray:
    b = _bounds(idx, self.shape)
    full = tuple(slice(s, e) for s, e in b)
    if self.n_in == 0:
      out = self._read(full)
    elif self.n_in == -1:
      flat = self._read(_group_range(b, self.shape))
      out = flat.reshape((b[0][1] - b[0][0],) + self.shape[1:])[(slice(None),) + full[1:]]
    else:
      k = self.n_in
      ins, outs = self.shape[:k], self.shape[k:]
      block = self._read((_group_range(b[k:], outs), _group_range(b[:k], ins)))
      block = block.T.reshape((b[0][1] - b[0][0],) + ins[1:] + (b[k][1] - b[k][0],) + outs[1:])
      out = block[(slice(None),) + full[1:k] + (slice(None),) + full[k + 1:]]
    return np.ascontiguousarray(out.astype(self.dtype, copy=False))


class LazyStack(_Lazy):
  """`np.stack(items)` of LazyTensors (the scan_layers layout), read on demand."""

  def __init__(self, items):
    self.items = list(items)
    self.shape = (len(self.items),) + self.items[0].shape
    self.dtype = self.items[0].dtype

  def __getitem__(self, idx) -> np.ndarray:
    b = _bounds(idx, self.shape)
    rest = tuple(slice(s, e) for s, e in b[1:])
    return np.stack([self.items[i][rest] for i in range(*b[0])])


def is_lazy(x) -> bool:
  """Whether `x` is a lazily read tensor (or a stack of them)."""
  return isinstance(x, (LazyTensor, LazyStack))


def stack(xs):
  """np.stack for host arrays, LazyStack for lazy ones (hf_io.stack_layers' `stack`)."""
  return LazyStack(xs) if is_lazy(xs[0]) else np.stack(xs)
