"""Gemma 2 / Gemma 3 / Qwen3 switches: sliding windows in training masks (with packing) and in
cached decoding past the window, heterogeneous layers under scan, the family presets' sizes
against transformers' own count, legacy config.json rules, the multimodal Gemma 3 text tower,
and adapters / merging / sampler / PRM / a train step on every family."""

import functools
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from safetensors.numpy import load_file, save_file

from mode_jax.adapters import AdapterConfig, params as ap
from mode_jax.adapters.merge import merge
from mode_jax.model import KVCache, ModelConfig, Transformer, hf_io, presets, sampling
from mode_jax.model.hf_io import stack_layers

_BASE = dict(vocab_size=67, embed_dim=32, num_layers=3, num_heads=4, num_kv_heads=2,
             head_dim=8, mlp_dim=40, max_seq_len=64, eos_id=1)
_TYPES = ("sliding_attention", "full_attention", "sliding_attention")
FAMILIES = {
    "gemma2": ModelConfig(**_BASE, model_type="gemma2", activation="gelu_tanh",
                          norm_plus_one=True, embed_scale=True, tie_embeddings=True,
                          post_norms=True, query_pre_attn_scalar=12.0, attn_softcap=0.7,
                          final_softcap=1.5, sliding_window=3, layer_types=_TYPES),
    "gemma3": ModelConfig(**_BASE, model_type="gemma3_text", activation="gelu_tanh",
                          norm_plus_one=True, embed_scale=True, tie_embeddings=True,
                          post_norms=True, qk_norm=True, query_pre_attn_scalar=12.0,
                          rope_theta=1e6, rope_local_theta=100.0, sliding_window=3,
                          layer_types=_TYPES),
    "qwen3": ModelConfig(**_BASE, model_type="qwen3", qk_norm=True, sliding_window=3,
                         layer_types=("full_attention",) + _TYPES[:2]),
}


def init(cfg, seed=0, scale=4.0):
  v = Transformer(cfg).init(jax.random.key(seed), jnp.ones((1, 4), jnp.int32))
  # Norm scales and kernels perturbed: zero-initialised (1 + w) norms would hide mistakes.
  leaves, tree = jax.tree.flatten(nn.meta.unbox(v["params"]))
  keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
  leaves = [x * scale + 0.1 * jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)]
  return jax.tree.unflatten(tree, leaves)


@functools.partial(jax.jit, static_argnums=0)
def _fwd(cfg, params, toks, kw):
  return Transformer(cfg).apply({"params": params}, toks, **kw)


def fwd(cfg, params, toks, **kw):
  return _fwd(cfg, params, jnp.asarray(toks), kw)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_window_changes_the_output_and_packing_keeps_it_per_segment(family):
  cfg = FAMILIES[family]
  params = init(cfg)
  rs = np.random.RandomState(1)
  a, b = rs.randint(2, 67, 7), rs.randint(2, 67, 9)
  windowless = fwd(cfg.replace(sliding_window=1000), params, b[None])
  alone = fwd(cfg, params, b[None])
  # Positions inside the window see everything either way; later ones must differ.
  np.testing.assert_allclose(alone[0, :3], windowless[0, :3], atol=1e-5)
  assert np.abs(np.asarray(alone[0, 4:] - windowless[0, 4:])).max() > 1e-3
  packed = np.concatenate([a, b, [0, 0]])[None]
  seg = np.array([[1] * 7 + [2] * 9 + [0, 0]])
  pos = np.array([list(range(7)) + list(range(9)) + [0, 0]])
  out = fwd(cfg, params, packed, segment_ids=jnp.asarray(seg), positions=jnp.asarray(pos))
  np.testing.assert_allclose(out[0, :7], fwd(cfg, params, a[None])[0], atol=2e-5)
  np.testing.assert_allclose(out[0, 7:16], alone[0], atol=2e-5)


@pytest.mark.parametrize("scan", [False, True])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_cached_decoding_past_the_window_matches_full_forward(family, scan):
  cfg = FAMILIES[family].replace(scan_layers=scan)
  params = init(FAMILIES[family])
  if scan:
    params = stack_layers(params, cfg.num_layers)
  rs = np.random.RandomState(2)
  seqs = [rs.randint(2, 67, 14), rs.randint(2, 67, 12)]
  prompt = np.zeros((2, 5), np.int32)               # 5 and 3 prompt tokens (left padding)
  prompt[0] = seqs[0][:5]
  prompt[1, 2:] = seqs[1][:3]
  cache = KVCache.init(cfg, 2, 16, start=np.array([0, 2]))
  logits, cache = fwd(cfg, params, prompt, cache=cache)
  steps = [logits]
  for t in range(8):                                 # decode well past the window of 3
    nxt = np.array([[seqs[0][5 + t]], [seqs[1][3 + t]]])
    out, cache = fwd(cfg, params, nxt, cache=cache)
    steps.append(out)
  for row, (s, n) in enumerate(zip(seqs, (5, 3))):
    ref = fwd(cfg, params, s[None, :n + 8])[0]
    got = np.concatenate([steps[0][row, 5 - n:]] + [x[row] for x in steps[1:]])
    np.testing.assert_allclose(got, ref, atol=3e-5)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_scan_over_heterogeneous_layers_matches_unrolled_values_and_grads(family):
  cfg = FAMILIES[family]
  params = init(cfg, scale=1.0)
  toks = jnp.asarray(np.random.RandomState(3).randint(0, 67, (2, 10)))
  loss = lambda c, p: jnp.mean(fwd(c, p, toks) ** 2)
  ref_l, ref_g = jax.value_and_grad(lambda p: loss(cfg, p))(params)
  scfg = cfg.replace(scan_layers=True, remat=True)
  l, g = jax.value_and_grad(lambda p: loss(scfg, p))(stack_layers(params, 3))
  np.testing.assert_allclose(l, ref_l, rtol=1e-5)
  for i in range(3):
    np.testing.assert_allclose(g["layers"]["attn"]["q"]["kernel"][i],
                               ref_g[f"layers_{i}"]["attn"]["q"]["kernel"], atol=1e-5)


# transformers' own parameter count (meta device, no memory) of each family preset, and the
# published totals: model cards / safetensors metadata (Gemma 3 4B: the text tower of the
# 4.30B multimodal model; Qwen3 counts the tied embedding once, as its card's 0.6B / 1.7B).
NEW_PRESETS = {"gemma2_2b": 2_614_341_888, "gemma3_270m": 268_098_176,
               "gemma3_1b": 999_885_952, "gemma3_4b": None, "qwen3_0_6b": 596_049_920,
               "qwen3_1_7b": None, "llama3_2_1b": 1_235_814_400}


@pytest.mark.parametrize("name", sorted(NEW_PRESETS))
def test_family_presets_count_like_transformers(name):
  torch = pytest.importorskip("torch")
  import transformers
  cfg = presets.get(name)
  hf = transformers.AutoConfig.for_model(**hf_io.config_to_hf(cfg))
  with torch.device("meta"):
    model = transformers.AutoModelForCausalLM.from_config(hf)
  assert sum(p.numel() for p in model.parameters()) == cfg.num_params()
  if NEW_PRESETS[name] is not None:
    assert cfg.num_params() == NEW_PRESETS[name]
  assert hf_io.config_from_hf(json.loads(json.dumps(hf_io.config_to_hf(cfg)))) == cfg


def test_legacy_configs_without_layer_types_follow_the_family_rules():
  gemma2 = dict(model_type="gemma2", vocab_size=10, hidden_size=8, intermediate_size=8,
                num_hidden_layers=4, num_attention_heads=2, head_dim=4, sliding_window=16,
                query_pre_attn_scalar=4, attn_logit_softcapping=50.0,
                final_logit_softcapping=30.0)
  cfg = hf_io.config_from_hf(gemma2)
  assert [cfg.is_local(i) for i in range(4)] == [True, False, True, False]
  assert (cfg.attn_softcap, cfg.final_softcap, cfg.attn_scale) == (50.0, 30.0, 0.5)
  gemma3 = dict(gemma2, model_type="gemma3_text", num_hidden_layers=7, sliding_window_pattern=3,
                rope_theta=1e6, rope_local_base_freq=1e4, attn_logit_softcapping=None,
                final_logit_softcapping=None, rope_scaling={"rope_type": "linear",
                                                           "factor": 8.0})
  cfg = hf_io.config_from_hf(gemma3)
  assert [cfg.is_local(i) for i in range(7)] == [True, True, False, True, True, False, True]
  assert (cfg.rope_theta, cfg.rope_local_theta, cfg.rope_scaling.factor) == (1e6, 1e4, 8.0)
  assert cfg.qk_norm and cfg.post_norms and cfg.attn_softcap is None
  qwen2 = dict(gemma2, model_type="qwen2", use_sliding_window=True, max_window_layers=3)
  assert hf_io.config_from_hf(qwen2).layer_types == ("full_attention",) * 3 + (
      "sliding_attention",)
  with pytest.raises(hf_io.CheckpointError, match="no sliding_window"):
    hf_io.config_from_hf(dict(qwen2, sliding_window=None))
  with pytest.raises(ValueError, match="cannot be written as model_type='llama'"):
    hf_io.config_to_hf(FAMILIES["gemma3"].replace(model_type="llama"))


def test_multimodal_gemma3_checkpoint_loads_its_text_tower(tmp_path):
  cfg = FAMILIES["gemma3"]
  params = init(cfg)
  text = tmp_path / "text"
  hf_io.save_hf_checkpoint(str(text), cfg, params)
  tensors = load_file(str(text / "model.safetensors"))
  for prefix in ("language_model.model.", "model.language_model."):
    mm = tmp_path / prefix.strip(".")
    os.makedirs(mm)
    renamed = {prefix + k[len("model."):]: v for k, v in tensors.items()}
    renamed["vision_tower.vision_model.embeddings.patch_embedding.weight"] = np.ones(
        (2, 3), np.float32)
    save_file(renamed, str(mm / "model.safetensors"))
    text_cfg = json.load(open(text / "config.json"))
    json.dump({"model_type": "gemma3", "text_config": text_cfg, "eos_token_id": [1, 106]},
              open(mm / "config.json", "w"))
    got_cfg, got = hf_io.load_hf_checkpoint(str(mm))
    assert got_cfg.model_type == "gemma3_text" and got_cfg.qk_norm
    toks = np.arange(2, 14)[None]
    np.testing.assert_allclose(fwd(got_cfg, got, toks), fwd(cfg, params, toks), atol=1e-6)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_adapters_merge_sampler_prm_and_training_on_every_family(family):
  from prm_jax.prm.model import PRMModel
  from mode_jax.train.step import TrainState, make_train_step
  cfg = FAMILIES[family]
  base = init(cfg, scale=2.0)
  acfg = AdapterConfig(method="mode", experts=2, rank=4, block=2, router="task", num_tasks=2,
                       targets=("q", "v", "down"))
  adapter = ap.init_adapter(cfg, acfg, jax.random.key(1))
  # Non-zero up-projections so that the adapters change the output.
  adapter = jax.tree.map(lambda x: x + 0.3 * jax.random.normal(jax.random.key(2), x.shape),
                         nn.meta.unbox(adapter))
  full = ap.combine(base, adapter)
  toks = np.random.RandomState(4).randint(2, 67, (2, 9))
  tids = jnp.array([1, 1])
  adapted = Transformer(cfg, acfg).apply({"params": full}, jnp.asarray(toks), task_ids=tids)
  merged = fwd(cfg, merge(full, acfg, 1), toks)
  np.testing.assert_allclose(adapted, merged, atol=5e-5)
  assert np.abs(np.asarray(adapted - fwd(cfg, base, toks))).max() > 1e-3
  # Sampler: greedy through the cache past the window == argmax of the full forward.
  s = sampling.Sampler(cfg, full, adapter=acfg, devices=jax.devices()[:1])
  out = s.generate([list(toks[0, :4])], max_new_tokens=6, temperature=0.0, task_ids=[1])
  seq = np.zeros((1, 10), np.int32)     # uncached reference: the full forward per new token
  seq[0, :4] = toks[0, :4]
  apply = jax.jit(lambda p, t: Transformer(cfg, acfg).apply({"params": p}, t,
                                                           task_ids=jnp.array([1])))
  for i in range(4, 10):
    seq[0, i] = int(jnp.argmax(apply(full, jnp.asarray(seq))[0, i - 1]))   # causal: the tail
  n = int(out.lengths[0])                                                 # does not matter
  assert n >= 1 and list(out.tokens[0][:n]) == list(seq[0, 4:4 + n])
  # PRM head on the family's backbone.
  prm = PRMModel(cfg)
  pv = prm.init(jax.random.key(0), jnp.asarray(toks))
  assert prm.apply(pv, jnp.asarray(toks)).shape == (2, 9)
  # Train steps on a fixed batch lower the loss.
  model = Transformer(cfg, acfg)
  tx = optax.adam(1e-2)
  step = jax.jit(make_train_step(model, tx, lambda s: 1e-2, full=False),
                 donate_argnums=())
  batch = {"decoder_input_tokens": jnp.asarray(toks), "decoder_target_tokens":
           jnp.asarray(np.roll(toks, -1, 1)), "decoder_loss_weights": jnp.ones((2, 9)),
           "decoder_task_ids": tids}
  state = TrainState(step=jnp.int32(0), params=adapter, opt_state=tx.init(adapter))
  losses = []
  for _ in range(5):
    state, m = step(state, base, batch)
    losses.append(float(m["loss"]))
  assert losses[-1] < losses[0] - 0.05, losses
