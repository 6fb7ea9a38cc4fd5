"""gs://bucket/... mapped to a local directory, offline, for every epath call (etils' own test
double `epath.testing.mock_epath`), for orbax's TensorStore GCS kvstore and for clu's
TensorBoard writer. A write that bypasses them (os.makedirs, open, os.path.abspath of the
bucket path) lands in the working directory instead, where tests look for it."""

import contextlib
import os
from unittest import mock

PREFIX = "gs://bucket/"


@contextlib.contextmanager
def fake_bucket(store: str):
  from etils.epath import gpath
  from etils.epath import testing as epath_testing
  from orbax.checkpoint._src.path import gcs_utils
  store = os.fspath(store).rstrip("/") + "/"

  def local(p):
    p = os.fspath(p)
    return os.path.join(store, p[len(PREFIX):]) if p.startswith(PREFIX) else p

  def remote(p):
    return p.replace(store, PREFIX, 1)

  def one(orig, path, *a, **k):
    return orig(local(path), *a, **k)

  def two(orig, path, dst, *a, **k):
    return orig(local(path), local(dst), *a, **k)

  def walk(orig, top, **k):
    for root, dirs, files in orig(local(top), **k):
      yield remote(os.fspath(root)), dirs, files

  def glob(orig, pattern):
    return [remote(p) for p in orig(local(pattern))]

  patches = [
      # With TensorFlow installed epath sends gs:// to tf.io.gfile whatever the mock says.
      mock.patch.object(gpath, "_is_tf_installed", lambda: False),
      mock.patch.object(gcs_utils, "get_kvstore_for_gcs",
                        lambda path: {"driver": "file", "path": local(path)}),
      mock.patch.object(gcs_utils, "is_hierarchical_namespace_enabled", lambda path: False)]
  try:                                 # TensorBoard (optional: needs the tensorboard package)
    from clu import metric_writers
    create = metric_writers.create_default_writer
    patches.append(mock.patch.object(metric_writers, "create_default_writer",
                                     lambda d, **k: create(local(d), **k)))
  except ImportError:
    pass
  fns = {n: one for n in ("exists", "isdir", "listdir", "makedirs", "mkdir", "open", "remove",
                          "rmtree", "stat")}
  with contextlib.ExitStack() as stack:
    for p in patches:
      stack.enter_context(p)
    stack.enter_context(epath_testing.mock_epath(copy=two, rename=two, replace=two, walk=walk,
                                                 glob=glob, **fns))
    yield
