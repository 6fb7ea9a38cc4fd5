"""The model with AdapterConfig(impl="pallas") (the fused kernel, interpret mode on CPU) gives
the logits and adapter gradients of impl="xla"."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mode_jax.adapters import AdapterConfig, combine, init_adapter
from mode_jax.model import Transformer, presets

ALL = ("q", "k", "v", "o", "gate", "up", "down")
CASES = {
    "mode_token_task": AdapterConfig("mode", experts=4, rank=8, block=2,
                                     targets=("q", "o", "up", "down"),
                                     router="token+task", num_tasks=3, scale=2.0),
    "mode_top2": AdapterConfig("mode", experts=4, rank=4, block=1, targets=("q", "v", "down"),
                               top_k=2),
    "lora": AdapterConfig("lora", rank=8, targets=ALL, kernel_block_sizes=(16, 32, 32)),
    "molora": AdapterConfig("molora", experts=3, rank=4, targets=("o", "up")),
}


@pytest.mark.parametrize("name", list(CASES))
def test_pallas_impl_matches_xla_logits_and_adapter_grads(name):
  acfg = CASES[name]
  cfg = presets.get("tiny")
  base = nn.meta.unbox(Transformer(cfg).init(jax.random.PRNGKey(0),
                                             jnp.zeros((1, 8), jnp.int32))["params"])
  ad = nn.meta.unbox(init_adapter(cfg, acfg, jax.random.PRNGKey(1)))
  # B starts at zero; perturb every adapter leaf so the adapter term is not trivially zero
  leaves, tree = jax.tree.flatten(ad)
  keys = jax.random.split(jax.random.PRNGKey(2), len(leaves))
  ad = jax.tree.unflatten(tree, [v + 0.05 * jax.random.normal(k, v.shape, v.dtype)
                                 for v, k in zip(leaves, keys)])
  rng = np.random.default_rng(0)
  tokens = jnp.asarray(rng.integers(1, cfg.vocab_size, (2, 11)), jnp.int32)
  task_ids = jnp.asarray([0, 2], jnp.int32) if acfg.uses_task_router else None

  def loss(adapter_params, impl):
    model = Transformer(cfg, dataclasses.replace(acfg, impl=impl))
    logits = model.apply({"params": combine(base, adapter_params)}, tokens, task_ids=task_ids)
    return jnp.mean(jax.nn.log_softmax(logits)[..., 3]), logits

  vg = jax.jit(jax.value_and_grad(loss, has_aux=True), static_argnums=1)
  (l_x, logits_x), g_x = vg(ad, "xla")
  (l_p, logits_p), g_p = vg(ad, "pallas")
  np.testing.assert_allclose(logits_p, logits_x, rtol=2e-5, atol=2e-5)
  for (path, gx), gp in zip(jax.tree_util.tree_leaves_with_path(g_x), jax.tree.leaves(g_p)):
    scale = max(float(jnp.abs(gx).max()), 1e-8)
    assert float(jnp.abs(gp - gx).max()) / scale < 1e-4, jax.tree_util.keystr(path)


@pytest.mark.parametrize("method", ["lora", "mode"])
def test_adapter_returns_x_w0_plus_term_for_every_impl(method):
  """One return contract: Adapter(x, W0) = x W0 + the term with impl xla, naive and pallas; the
  term is checked against the naive loop (an independent reference) with a random B."""
  from mode_jax.adapters import Adapter, reference
  acfg = AdapterConfig(method, experts=1 if method == "lora" else 4, rank=4)
  k = jax.random.split(jax.random.PRNGKey(0), 3)
  x, w0 = jax.random.normal(k[0], (2, 5, 16)), jax.random.normal(k[1], (16, 8))
  mod = lambda impl: Adapter(acfg.replace(impl=impl), (8,), ("embed",), ("mlp",))
  params = nn.meta.unbox(mod("xla").init(k[2], x, w0)["params"])
  params = dict(params, B=jax.random.normal(k[2], params["B"].shape))
  want = x @ w0 + reference.naive_delta(x, params, acfg)
  for impl in ("xla", "naive", "pallas"):
    got = mod(impl).apply({"params": params}, x, w0)
    np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5, err_msg=impl)
  with pytest.raises(ValueError, match="kernel_block_sizes"):
    AdapterConfig("lora", rank=4, impl="pallas", kernel_block_sizes=(16, 16))


def test_fused_kernel_under_a_multi_device_mesh_runs_in_shard_map_and_equals_one_device():
  """impl=pallas under an 8-device FSDP mesh and a data x tensor mesh (interpret mode, in a fresh
  process with 8 host devices): the kernel sits inside a shard_map (manual) region, as Mosaic
  needs on a multi-chip TPU, and one train step gives the loss, gradient norm and updated
  adapters of one device."""
  import json
  import os
  import subprocess
  import sys
  worker = os.path.join(os.path.dirname(__file__), "pallas_mesh_worker.py")
  r = subprocess.run([sys.executable, worker], capture_output=True, text=True, timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  res = json.loads(r.stdout.strip().splitlines()[-1])
  assert not res["one"]["manual_region"]
  for name in ("fsdp8", "data2_tensor4"):
    assert res[name]["manual_region"], name
    assert abs(res[name]["loss"] - res["one"]["loss"]) < 1e-5, name
    assert abs(res[name]["grad_norm"] - res["one"]["grad_norm"]) < 1e-6, name
    assert res[name]["max_param_diff"] < 1e-5, name
