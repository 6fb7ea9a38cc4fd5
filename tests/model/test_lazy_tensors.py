"""LazyTensor / LazyStack: any slice of the Linen view equals numpy indexing of the whole
tensor converted eagerly, and slicing a group's first dim reads exactly the bytes needed."""

import ml_dtypes
import numpy as np
import pytest
from safetensors import safe_open
from safetensors.numpy import save_file

from mode_jax.model import hf_io
from mode_jax.model.lazy_tensors import LazyStack, LazyTensor

# (Linen shape, n_in): embedding-like, flat bias, q [E, H, D], o [H, D, E]
CASES = [((12, 8), 0), ((4, 6), -1), ((8, 4, 6), 1), ((4, 6, 8), 2)]
INDICES = [(slice(None),), (slice(2, 4),), (slice(0, 2), slice(1, 3)),
           (Ellipsis, slice(1, 2)), (slice(1, 3), slice(None), slice(2, 5))]


@pytest.fixture
def stored(tmp_path):
  rng = np.random.RandomState(0)
  linen = {f"t{i}": rng.randn(*shape).astype(np.float32) for i, (shape, _) in enumerate(CASES)}
  tensors = {k: hf_io._to_hf(v, v.shape, CASES[i][1]) for i, (k, v) in enumerate(linen.items())}
  path = str(tmp_path / "m.safetensors")
  save_file(tensors, path)
  handle = safe_open(path, framework="numpy")
  return linen, (lambda: handle), path


def _index(idx, ndim):
  """A numpy-valid version of idx for an array of ndim dims (drop excess slices)."""
  if Ellipsis in idx:
    return idx
  return idx[:ndim]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_any_slice_equals_eager_conversion(stored, case):
  linen, handle, path = stored
  shape, n_in = CASES[case]
  want = linen[f"t{case}"]
  lazy = LazyTensor(handle, path, f"t{case}", shape, n_in, ml_dtypes.bfloat16)
  assert lazy.shape == shape and np.array_equal(np.asarray(lazy), want.astype(ml_dtypes.bfloat16))
  for idx in INDICES:
    idx = _index(idx, len(shape))
    got = lazy[idx]
    np.testing.assert_array_equal(got, want[idx].astype(ml_dtypes.bfloat16), err_msg=str(idx))


@pytest.mark.parametrize("case", range(len(CASES)))
def test_slicing_a_groups_first_dim_reads_only_that_slice(stored, case):
  linen, handle, path = stored
  shape, n_in = CASES[case]
  for dim in [0] + ([n_in] if n_in > 0 else []):     # the input group's and the output's
    reads = []
    lazy = LazyTensor(handle, path, f"t{case}", shape, n_in, np.float32, on_read=reads.append)
    idx = [slice(None)] * len(shape)
    idx[dim] = slice(1, 3)
    got = lazy[tuple(idx)]
    np.testing.assert_array_equal(got, linen[f"t{case}"][tuple(idx)])
    assert reads == [got.nbytes], dim


def test_stack_slices_layers_and_inner_dims(stored):
  linen, handle, path = stored
  shape, n_in = CASES[2]
  layers = [LazyTensor(handle, path, "t2", shape, n_in, np.float32) for _ in range(3)]
  stack = LazyStack(layers)
  want = np.stack([linen["t2"]] * 3)
  assert stack.shape == want.shape
  idx = (slice(1, 3), slice(None), slice(2, 4), slice(None))
  np.testing.assert_array_equal(stack[idx], want[idx])


def test_a_bad_index_or_a_failed_read_is_an_error_naming_the_file(stored):
  _, handle, path = stored
  lazy = LazyTensor(handle, path, "nope", (4, 6), -1, np.float32, error=hf_io.CheckpointError)
  with pytest.raises(hf_io.CheckpointError, match="m.safetensors: tensor 'nope'"):
    lazy[...]
  with pytest.raises(TypeError, match="step must be 1"):
    LazyTensor(handle, path, "t1", (4, 6), -1, np.float32)[::2]
