"""Backbone behaviour: axis names, packing, KV cache, scan/remat, presets and their sizes."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mode_jax.model import KVCache, ModelConfig, Transformer, presets

CFG = ModelConfig(vocab_size=61, embed_dim=32, num_layers=2, num_heads=4, num_kv_heads=2,
                  head_dim=8, mlp_dim=40, qkv_bias=True, max_seq_len=64)


def init(cfg, seed=0):
  v = Transformer(cfg).init(jax.random.key(seed), jnp.ones((1, 4), jnp.int32))
  return v, nn.meta.unbox(v["params"])


def fwd(cfg, params, toks, **kw):
  return Transformer(cfg).apply({"params": params}, jnp.asarray(toks), **kw)


def test_every_param_has_logical_axis_names():
  variables, _ = init(CFG)
  specs = nn.get_partition_spec(variables)["params"]
  allowed = {"vocab", "embed", "heads", "kv_heads", "head_dim", "mlp"}
  leaves = jax.tree.leaves(specs, is_leaf=lambda x: isinstance(x, jax.sharding.PartitionSpec))
  assert leaves and all(set(s) <= allowed and len(s) >= 1 for s in leaves)
  assert tuple(specs["layers_0"]["attn"]["q"]["kernel"]) == ("embed", "heads", "head_dim")
  assert tuple(specs["layers_0"]["attn"]["o"]["kernel"]) == ("heads", "head_dim", "embed")
  assert tuple(specs["layers_0"]["mlp"]["down"]["kernel"]) == ("mlp", "embed")
  scanned = nn.get_partition_spec(init(CFG.replace(scan_layers=True))[0])["params"]
  assert tuple(scanned["layers"]["mlp"]["gate"]["kernel"]) == ("layers", "embed", "mlp")


def test_projection_names_are_stable():
  _, params = init(CFG)
  assert set(params["layers_1"]["attn"]) == {"q", "k", "v", "o"}
  assert set(params["layers_1"]["mlp"]) == {"gate", "up", "down"}


def test_packed_segments_equal_separate_sequences():
  _, params = init(CFG)
  rs = np.random.RandomState(1)
  a, b = rs.randint(1, 61, 5), rs.randint(1, 61, 7)
  packed = np.concatenate([a, b, [0, 0]])[None]
  seg = np.array([[1] * 5 + [2] * 7 + [0, 0]])
  pos = np.array([list(range(5)) + list(range(7)) + [0, 0]])
  out = fwd(CFG, params, packed, segment_ids=jnp.asarray(seg), positions=jnp.asarray(pos))
  np.testing.assert_allclose(out[0, :5], fwd(CFG, params, a[None])[0], atol=1e-5)
  np.testing.assert_allclose(out[0, 5:12], fwd(CFG, params, b[None])[0], atol=1e-5)


@pytest.mark.parametrize("scan", [False, True])
def test_cached_decoding_matches_full_forward_with_left_padding(scan):
  cfg = CFG.replace(scan_layers=scan)
  _, params = init(cfg)
  rs = np.random.RandomState(2)
  seqs = [rs.randint(1, 61, 9), rs.randint(1, 61, 6)]
  pad = 4
  prompt = np.zeros((2, pad + 3), np.int32)   # left-padded prompts of 7 and 4 real tokens
  prompt[0, 4 - 4:] = seqs[0][:7]
  prompt[1, 3:] = seqs[1][:4]
  start = np.array([0, 3])
  cache = KVCache.init(cfg, 2, 16, start=start)
  logits, cache = fwd(cfg, params, prompt, cache=cache)
  steps = [logits]
  for t in range(2):
    nxt = np.array([[seqs[0][7 + t]], [seqs[1][4 + t]]])
    l, cache = fwd(cfg, params, nxt, cache=cache)
    steps.append(l)
  for row, (s, n_prompt) in enumerate(zip(seqs, (7, 4))):
    ref = fwd(cfg, params, s[None, :n_prompt + 2])[0]
    got = np.concatenate([steps[0][row, prompt.shape[1] - n_prompt:], steps[1][row],
                          steps[2][row]])
    np.testing.assert_allclose(got, ref, atol=2e-5)


def test_scan_and_remat_match_plain_layers_values_and_grads():
  _, params = init(CFG)
  from mode_jax.model.hf_io import stack_layers
  toks = jnp.asarray(np.random.RandomState(3).randint(0, 61, (2, 10)))
  loss = lambda cfg, p: jnp.mean(fwd(cfg, p, toks) ** 2)
  ref_l, ref_g = jax.value_and_grad(lambda p: loss(CFG, p))(params)
  for cfg, p in ((CFG.replace(remat=True), params),
                 (CFG.replace(scan_layers=True, remat=True), stack_layers(params, 2))):
    l, g = jax.value_and_grad(lambda p: loss(cfg, p))(p)
    np.testing.assert_allclose(l, ref_l, rtol=1e-5)
    if cfg.scan_layers:
      g = g["layers"]["mlp"]["down"]["kernel"][1]
    else:
      g = g["layers_1"]["mlp"]["down"]["kernel"]
    np.testing.assert_allclose(g, ref_g["layers_1"]["mlp"]["down"]["kernel"], atol=1e-6)


def test_bfloat16_compute_returns_float32_logits_close_to_float32():
  _, params = init(CFG)
  toks = np.random.RandomState(4).randint(0, 61, (2, 8))
  ref = fwd(CFG, params, toks)
  out = fwd(CFG.replace(dtype="bfloat16"), params, toks)
  assert out.dtype == jnp.float32
  np.testing.assert_allclose(out, ref, atol=0.05)


def test_hidden_states_and_last_only():
  _, params = init(CFG)
  toks = np.random.RandomState(5).randint(0, 61, (2, 8))
  h = fwd(CFG, params, toks, head=False)
  assert h.shape == (2, 8, 32)
  full = fwd(CFG, params, toks)
  last, _ = fwd(CFG, params, toks, cache=KVCache.init(CFG, 2, 8), last_only=True)
  np.testing.assert_allclose(last[:, 0], full[:, -1], atol=1e-5)


# Published parameter counts of the real models (HF model cards / safetensors metadata).
PUBLISHED = {"gemma_2b": 2_506_172_416, "gemma_7b": 8_537_680_896, "llama3_8b": 8_030_261_248,
             "qwen2_0_5b": 494_032_768, "qwen2_1_5b": 1_543_714_304}


@pytest.mark.parametrize("name", presets.names())
def test_presets_build_and_count_parameters(name):
  cfg = presets.get(name)
  shapes = jax.eval_shape(lambda: Transformer(cfg).init(jax.random.key(0),
                                                        jnp.ones((1, 2), jnp.int32)))
  n = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(nn.meta.unbox(shapes)))
  assert n == cfg.num_params()
  if name in PUBLISHED:
    assert n == PUBLISHED[name]


def test_bad_configs_are_rejected():
  with pytest.raises(ValueError, match="multiple of num_kv_heads"):
    CFG.replace(num_kv_heads=3)
  with pytest.raises(ValueError, match="activation"):
    CFG.replace(activation="relu6")
  with pytest.raises(KeyError, match="unknown model preset 'gemma_3b'"):
    presets.get("gemma_3b")
