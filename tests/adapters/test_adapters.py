"""Adapters: the dense implementation against a naive loop-over-experts reference, the paper's
identities, formula-vs-leaves parameter counts, init, routing options, merging and export."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mode_jax import adapters
from mode_jax.adapters import AdapterConfig, routing
from mode_jax.model import ModelConfig, Transformer, hf_io, presets

CFG = ModelConfig(vocab_size=61, embed_dim=32, num_layers=2, num_heads=4, num_kv_heads=2,
                  head_dim=8, mlp_dim=40, qkv_bias=True, max_seq_len=64)
ALL = ("q", "k", "v", "o", "gate", "up", "down")
TOKS = jnp.asarray(np.random.RandomState(0).randint(0, 61, (3, 9)), jnp.int32)
TASKS = jnp.asarray([2, 0, 2], jnp.int32)

METHODS = {
    "lora": AdapterConfig("lora", rank=4, targets=ALL, scale=0.5),
    "molora": AdapterConfig("molora", experts=3, rank=2, targets=ALL),
    "molora_sd": AdapterConfig("molora_sd", experts=3, rank=4, targets=ALL),
    "mode_p1": AdapterConfig("mode", experts=3, rank=4, targets=ALL),
    "mode_p2": AdapterConfig("mode", experts=4, rank=4, block=2, targets=ALL, scale=2.0),
    "mode_task": AdapterConfig("mode", experts=3, rank=4, router="task", num_tasks=3),
    "mode_token_task": AdapterConfig("mode", experts=3, rank=4, block=2, router="token+task",
                                     num_tasks=3),
    "molora_task": AdapterConfig("molora", experts=2, rank=3, router="task", num_tasks=3),
}


def init_params(cfg, acfg, seed=0, perturb=0.3):
  """Params of the adapted model with B (zero at init) and routers made non-trivial."""
  v = Transformer(cfg, adapter=acfg).init(jax.random.key(seed), TOKS, task_ids=TASKS)
  params = nn.meta.unbox(v["params"])
  keys = iter(jax.random.split(jax.random.key(seed + 1), 1000))

  def bump(path, x):
    if not adapters.params.is_adapter_path(path):
      return x
    return x + perturb * jax.random.normal(next(keys), x.shape, x.dtype)
  return jax.tree_util.tree_map_with_path(bump, params) if perturb else params


def fwd(cfg, acfg, params, **kw):
  return Transformer(cfg, adapter=acfg).apply({"params": params}, TOKS, task_ids=TASKS, **kw)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_dense_matches_naive_loop_over_experts(name):
  acfg = METHODS[name]
  params = init_params(CFG, acfg)
  dense = fwd(CFG, acfg, params)
  naive = fwd(CFG, acfg.replace(impl="naive"), params)
  base = Transformer(CFG).apply({"params": adapters.split(params)[0]}, TOKS)
  assert float(jnp.max(jnp.abs(dense - base))) > 1e-2   # the adapters do something
  np.testing.assert_allclose(dense, naive, rtol=1e-5, atol=1e-5)


def _copy_into(src, drop=()):
  """Adapter params of one method placed into another's tree (same paths and shapes)."""
  def walk(t):
    return {k: walk(v) for k, v in t.items() if k not in drop} if isinstance(t, dict) else t
  return walk(src)


def test_mode_1xrxr_equals_lora_r():
  mode = AdapterConfig("mode", experts=1, rank=4, block=4, targets=ALL)
  lora = AdapterConfig("lora", rank=4, targets=ALL)
  params = init_params(CFG, mode)
  lora_params = _copy_into(params, drop=("router",))
  assert jax.tree.structure(lora_params) == jax.tree.structure(init_params(CFG, lora))
  np.testing.assert_allclose(fwd(CFG, mode, params), fwd(CFG, lora, lora_params),
                             rtol=1e-6, atol=1e-6)


def test_mode_mxrxr_equals_molora_sd():
  mode = AdapterConfig("mode", experts=3, rank=4, block=4, targets=ALL)
  sd = AdapterConfig("molora_sd", experts=3, rank=4, targets=ALL)
  params = init_params(CFG, mode)
  assert jax.tree.map(jnp.shape, params) == jax.tree.map(jnp.shape, init_params(CFG, sd))
  np.testing.assert_allclose(fwd(CFG, mode, params), fwd(CFG, sd, params), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", sorted(METHODS))
@pytest.mark.parametrize("scan", [False, True])
def test_formula_count_equals_initialised_leaves(name, scan):
  acfg = METHODS[name]
  cfg = CFG.replace(scan_layers=scan)
  _, ad = adapters.split(init_params(cfg, acfg, perturb=0))
  assert adapters.params.count_leaves(ad) == adapters.count_params(cfg, acfg)


def test_formulas_on_literal_numbers():
  # Gemma 2B (E=2048, 8 heads x 256, one KV head, 18 layers), q,k,v,o adapted.
  gemma = presets.get("gemma_2b")
  # MoDE 16x4: per matrix P r + m r Q + P m r/p -> q,o: 270336; k,v: 155648.
  assert adapters.count_params(gemma, AdapterConfig("mode", experts=16, rank=4)) == \
      18 * (2 * 270336 + 2 * 155648)
  # LoRA 64: r (P + Q) -> q,o: 262144; k,v: 147456.
  assert adapters.count_params(gemma, AdapterConfig("lora", rank=64)) == \
      18 * (2 * 262144 + 2 * 147456)
  assert adapters.matrix_params(AdapterConfig("molora", experts=16, rank=4), 10, 6) == \
      16 * 4 * 16 + 10 * 16
  assert adapters.matrix_params(AdapterConfig("molora_sd", experts=16, rank=4), 10, 6) == \
      10 * 4 + 16 * 4 * 6 + 10 * 16
  assert adapters.matrix_params(AdapterConfig("mode", experts=6, rank=4, block=2), 10, 6) == \
      10 * 4 + 6 * 4 * 6 + 10 * 6 * 2


def test_init_starts_at_base_and_leaves_base_untouched():
  for acfg in (METHODS["mode_p2"], METHODS["molora"],
               AdapterConfig("lora", rank=4, init="kaiming_uniform", targets=ALL)):
    v = Transformer(CFG, adapter=acfg).init(jax.random.key(3), TOKS, task_ids=TASKS)
    params = nn.meta.unbox(v["params"])
    base, ad = adapters.split(params)
    ref_base = nn.meta.unbox(Transformer(CFG).init(jax.random.key(3), TOKS)["params"])
    assert jax.tree.structure(base) == jax.tree.structure(ref_base)
    np.testing.assert_array_equal(fwd(CFG, acfg, params),
                                  Transformer(CFG).apply({"params": base}, TOKS))
    q = ad["layers_0"]["attn"]["q"]["adapter"]
    assert float(jnp.abs(q["B"]).max()) == 0.0
    if acfg.init == "kaiming_uniform":
      bound = 1 / np.sqrt(CFG.embed_dim)
      assert float(jnp.abs(q["A"]).max()) <= bound and float(jnp.abs(q["A"]).max()) > bound / 2
    else:
      assert abs(float(jnp.std(q["A"])) - 0.01) < 0.003
    if acfg.routed:   # small random, not zero (zero router + zero B is a symmetric fixed point)
      assert 0 < float(jnp.abs(q["router"]).max()) < 0.2


def test_trainable_mask_split_combine_and_gradients():
  acfg = METHODS["mode_p2"]
  params = init_params(CFG, acfg)
  mask = adapters.trainable_mask(params)
  flat = jax.tree_util.tree_flatten_with_path(mask)[0]
  assert all(m == ("adapter" in jax.tree_util.keystr(p)) for p, m in flat)
  base, ad = adapters.split(params)
  assert jax.tree.all(jax.tree.map(lambda a, b: bool(jnp.all(a == b)),
                                   adapters.combine(base, ad), params))

  def loss(ad):
    return jnp.mean(fwd(CFG, acfg, adapters.combine(base, ad)) ** 2)
  grads = jax.grad(loss)(ad)
  assert set(jax.tree.leaves(jax.tree.map(lambda g: bool(jnp.any(g != 0)), grads))) == {True}
  with pytest.raises(KeyError, match="layers_7"):
    adapters.combine(base, {"layers_7": ad["layers_0"]})


def test_task_routing_depends_only_on_the_rows_task():
  acfg = METHODS["mode_task"]
  params = init_params(CFG, acfg)
  m = Transformer(CFG, adapter=acfg)
  out = m.apply({"params": params}, TOKS, task_ids=jnp.asarray([0, 1, 2]))
  swapped = m.apply({"params": params}, TOKS, task_ids=jnp.asarray([0, 2, 2]))
  np.testing.assert_array_equal(out[0], swapped[0])
  assert float(jnp.max(jnp.abs(out[1] - swapped[1]))) > 1e-3
  np.testing.assert_allclose(swapped[2], out[2], atol=1e-6)
  with pytest.raises(ValueError, match="task_ids"):
    m.apply({"params": params}, TOKS)


def test_gate_weights_and_aux_losses_on_literal_values():
  logits = jnp.log(jnp.asarray([[[0.5, 0.3, 0.2]], [[0.1, 0.1, 0.8]]]))  # [2 tokens, 1 block, 3]
  w, p = routing.gate_weights(logits, top_k=2)
  np.testing.assert_allclose(w[0, 0], [0.625, 0.375, 0.0], atol=1e-6)
  np.testing.assert_allclose(p[1, 0], [0.1, 0.1, 0.8], atol=1e-6)
  # Top-1 with every token on expert 0: f = (1, 0, 0), P = (1, 0, 0) -> m * 1 = 3.
  one_hot = jnp.log(jnp.asarray([[[1.0, 1e-9, 1e-9]]] * 4))
  w1, p1 = routing.gate_weights(one_hot, top_k=1)
  assert abs(float(routing.load_balance_loss(w1, p1)) - 3.0) < 1e-5
  # Uniform routing: loss 1; z-loss of zero logits: log(m)^2.
  zeros = jnp.zeros((5, 2, 4))
  wu, pu = routing.gate_weights(zeros, top_k=0)
  assert abs(float(routing.load_balance_loss(wu, pu)) - 1.0) < 1e-6
  assert abs(float(routing.z_loss(zeros)) - np.log(4) ** 2) < 1e-5


def test_top_k_routing_sows_aux_losses_and_stats():
  acfg = AdapterConfig("mode", experts=4, rank=4, block=2, top_k=1, z_loss_weight=1e-3,
                       router="token+task", num_tasks=3)
  params = init_params(CFG, acfg)
  out, state = Transformer(CFG, adapter=acfg).apply(
      {"params": params}, TOKS, task_ids=TASKS, mutable=["aux_loss", "routing"])
  aux = state["aux_loss"]["layers_1"]["attn"]["v"]["adapter"]
  lb, zl = aux["load_balance"][0], aux["z_loss"][0]
  assert 0.01 * 1.0 - 1e-6 <= float(lb) <= 0.01 * 4 + 1e-6 and float(zl) > 0
  assert len(jax.tree.leaves(state["aux_loss"])) == 2 * 4 * 2   # 2 losses x 4 targets x 2 layers
  stats = state["routing"]["layers_0"]["attn"]["q"]["adapter"]
  np.testing.assert_allclose(stats["expert_weight"][0].sum(-1), np.ones(2), atol=1e-5)
  np.testing.assert_allclose(stats["task_tokens"][0], [9, 0, 18])
  util = stats["task_weight_sum"][0][2] / 18
  np.testing.assert_allclose(util.sum(-1), np.ones(2), atol=1e-5)
  # Scanned layers stack the sown values along the layer axis.
  cfg = CFG.replace(scan_layers=True)
  _, st = Transformer(cfg, adapter=acfg).apply(
      {"params": init_params(cfg, acfg)}, TOKS, task_ids=TASKS, mutable=["routing"])
  assert st["routing"]["layers"]["attn"]["q"]["adapter"]["expert_weight"][0].shape == (2, 2, 4)


@pytest.mark.parametrize("name", ["lora", "mode_task", "molora_task"])
@pytest.mark.parametrize("scan", [False, True])
def test_merge_round_trip(name, scan):
  acfg = METHODS[name]
  cfg = CFG.replace(scan_layers=scan)
  params = init_params(cfg, acfg)
  merged = adapters.merge(params, acfg)
  base_model = Transformer(cfg)
  if not acfg.routed:
    np.testing.assert_allclose(base_model.apply({"params": merged}, TOKS),
                               fwd(cfg, acfg, params), rtol=1e-5, atol=1e-5)
    return
  assert len(merged) == acfg.num_tasks
  for t, tree in enumerate(merged):
    ids = jnp.full((3,), t, jnp.int32)
    ref = Transformer(cfg, adapter=acfg).apply({"params": params}, TOKS, task_ids=ids)
    np.testing.assert_allclose(base_model.apply({"params": tree}, TOKS), ref,
                               rtol=1e-5, atol=1e-5)


def test_token_routed_merge_is_refused():
  with pytest.raises(ValueError, match="depend on each token"):
    adapters.merge(init_params(CFG, METHODS["mode_p1"]), METHODS["mode_p1"])


def test_export_import_round_trip_and_errors(tmp_path):
  acfg = METHODS["mode_token_task"]
  params = init_params(CFG, acfg)
  path = str(tmp_path / "ad")
  adapters.save_adapter(path, params, acfg, metadata={"base": "test"})
  ad, acfg2 = adapters.load_adapter(path)
  assert acfg2 == acfg
  base, _ = adapters.split(params)
  np.testing.assert_array_equal(fwd(CFG, acfg2, adapters.combine(base, ad)),
                                fwd(CFG, acfg, params))
  assert not (tmp_path / "ad" / "adapter_config.json").exists()     # PEFT's name: not ours
  # A directory written under the old name still loads.
  (tmp_path / "ad" / "mode_jax_adapter.json").rename(tmp_path / "ad" / "adapter_config.json")
  assert adapters.load_adapter(path)[1] == acfg
  (tmp_path / "ad" / "adapter_config.json").rename(tmp_path / "ad" / "mode_jax_adapter.json")
  (tmp_path / "ad" / "mode_jax_adapter.json").write_text('{"format": "x"}')
  with pytest.raises(ValueError, match="mode_jax_adapter.json.*format"):
    adapters.load_adapter(path)
  (tmp_path / "ad" / "mode_jax_adapter.json").write_text(
      '{"format": "mode_jax-adapter-v1", "adapter": {"method": "mode", "expert": 2}}')
  with pytest.raises(ValueError, match="expert"):
    adapters.load_adapter(path)
  with pytest.raises(FileNotFoundError, match="mode_jax_adapter.json"):
    adapters.load_adapter(str(tmp_path))
  (tmp_path / "ad" / "adapter.safetensors").unlink()
  with pytest.raises(FileNotFoundError, match="adapter.safetensors"):
    adapters.load_adapter(path)
  with pytest.raises(ValueError, match="no adapter"):
    adapters.save_adapter(str(tmp_path / "none"), base, acfg)


def test_init_adapter_attaches_to_a_loaded_base():
  acfg = METHODS["mode_p2"]
  ad = nn.meta.unbox(adapters.init_adapter(CFG, acfg, jax.random.key(0)))
  base = nn.meta.unbox(Transformer(CFG).init(jax.random.key(1), TOKS)["params"])
  params = adapters.combine(base, ad)
  assert adapters.params.count_leaves(ad) == adapters.count_params(CFG, acfg)
  np.testing.assert_array_equal(fwd(CFG, acfg, params), Transformer(CFG).apply(
      {"params": base}, TOKS))


def test_float32_adapters_on_a_bfloat16_base():
  acfg = METHODS["mode_p2"]
  cfg16 = CFG.replace(dtype="bfloat16", param_dtype="bfloat16")
  params = init_params(CFG, acfg, perturb=0.05)   # adapter term comparable to the base term
  p16 = jax.tree_util.tree_map_with_path(
      lambda p, x: x if adapters.params.is_adapter_path(p) else x.astype(jnp.bfloat16), params)
  out16 = fwd(cfg16, acfg, p16)
  ad_dtypes = {x.dtype for x in jax.tree.leaves(adapters.split(p16)[1])}
  assert ad_dtypes == {jnp.dtype(jnp.float32)} and out16.dtype == jnp.float32
  ref = fwd(CFG, acfg, params)
  assert float(jnp.max(jnp.abs(ref - fwd(CFG, None, adapters.split(params)[0])))) > 1e-2
  assert float(jnp.max(jnp.abs(out16 - ref))) < 0.03 * float(jnp.max(jnp.abs(ref)))


def test_bad_adapter_configs_are_rejected():
  for kw, field in [(dict(method="dora"), "method"), (dict(method="lora", experts=2), "experts"),
                    (dict(method="mode", rank=4, block=3), "block"),
                    (dict(method="molora", experts=2, rank=4, block=2), "block"),
                    (dict(targets=("q", "qq")), "targets"),
                    (dict(method="mode", experts=2, router="task"), "num_tasks"),
                    (dict(method="mode", experts=2, top_k=3), "top_k")]:
    with pytest.raises(ValueError, match=f"AdapterConfig.{field}"):
      AdapterConfig(**kw)


def test_lora_matches_hf_peft(hf_checkpoint, tokens):
  """Same LoRA weights in a PEFT-wrapped transformers Llama and in our model: logits agree."""
  import peft
  import torch
  torch_model, path = hf_checkpoint("llama_gqa_headdim")
  cfg, base = hf_io.load_hf_checkpoint(path)
  r, scale, targets = 4, 2.0, ("q", "k", "v", "o", "gate", "up", "down")
  acfg = AdapterConfig("lora", rank=r, scale=scale, targets=targets)
  ad = nn.meta.unbox(adapters.init_adapter(cfg, acfg, jax.random.key(0)))
  ad = jax.tree.map(lambda x: x + 0.2 * jax.random.normal(jax.random.key(x.size), x.shape), ad)
  ours = Transformer(cfg, adapter=acfg).apply({"params": adapters.combine(base, ad)},
                                              jnp.asarray(tokens))

  hf_names = {"q": "self_attn.q_proj", "k": "self_attn.k_proj", "v": "self_attn.v_proj",
              "o": "self_attn.o_proj", "gate": "mlp.gate_proj", "up": "mlp.up_proj",
              "down": "mlp.down_proj"}
  lcfg = peft.LoraConfig(r=r, lora_alpha=r * scale, lora_dropout=0.0,
                         target_modules=[hf_names[t].split(".")[1] for t in targets])
  pm = peft.get_peft_model(torch_model, lcfg).eval()
  mods = dict(pm.named_modules())
  with torch.no_grad():
    for i in range(cfg.num_layers):
      for t in targets:
        node = ad[f"layers_{i}"]["attn" if t in ("q", "k", "v", "o") else "mlp"][t]["adapter"]
        mod = mods[f"base_model.model.model.layers.{i}.{hf_names[t]}"]
        a = np.asarray(node["A"]).reshape(-1, r).T
        b = np.asarray(node["B"][0]).reshape(r, -1).T
        mod.lora_A["default"].weight.copy_(torch.from_numpy(np.ascontiguousarray(a)))
        mod.lora_B["default"].weight.copy_(torch.from_numpy(np.ascontiguousarray(b)))
    ref = pm(torch.from_numpy(np.asarray(tokens)).long()).logits.numpy()
  base_only = Transformer(cfg).apply({"params": base}, jnp.asarray(tokens))
  assert float(np.max(np.abs(ref - np.asarray(base_only)))) > 1e-2
  np.testing.assert_allclose(np.asarray(ours), ref, atol=1e-4, rtol=1e-4)


def test_sampler_with_task_routed_adapter_matches_merged_models():
  from mode_jax.model.sampling import Sampler
  acfg = METHODS["mode_task"]
  cfg = CFG.replace(eos_id=None)
  params = init_params(cfg, acfg)
  prompts = [[5, 6, 7], [8, 9], [10, 11, 12, 13]]
  tasks = [2, 0, 1]
  out = Sampler(cfg, params, adapter=acfg).generate(prompts, max_new_tokens=6, temperature=0.0,
                                                    task_ids=tasks)
  merged = adapters.merge(params, acfg)
  for i, (p, t) in enumerate(zip(prompts, tasks)):
    ref = Sampler(cfg, merged[t]).generate([p], max_new_tokens=6, temperature=0.0)
    np.testing.assert_array_equal(out.tokens[i], ref.tokens[0])
  other = Sampler(cfg, params, adapter=acfg).generate(prompts, max_new_tokens=6, temperature=0.0,
                                                      task_ids=[1, 1, 1])
  assert not np.array_equal(other.tokens, out.tokens)


def test_per_token_task_ids_route_packed_rows():
  """A packed row holding two tasks ([B, T] task ids) equals the two rows run separately."""
  acfg = METHODS["mode_token_task"]
  params = init_params(CFG, acfg)
  m = Transformer(CFG, adapter=acfg)
  a, b = TOKS[0, :4], TOKS[1, :5]
  packed = jnp.concatenate([a, b])[None]
  seg = jnp.asarray([[1] * 4 + [2] * 5])
  pos = jnp.asarray([list(range(4)) + list(range(5))])
  tids = jnp.asarray([[2] * 4 + [1] * 5])
  out = m.apply({"params": params}, packed, segment_ids=seg, positions=pos, task_ids=tids)
  ra = m.apply({"params": params}, a[None], task_ids=jnp.asarray([2]))
  rb = m.apply({"params": params}, b[None], task_ids=jnp.asarray([1]))
  np.testing.assert_allclose(out[0, :4], ra[0], atol=1e-5)
  np.testing.assert_allclose(out[0, 4:], rb[0], atol=1e-5)
  naive = Transformer(CFG, adapter=acfg.replace(impl="naive")).apply(
      {"params": params}, packed, segment_ids=seg, positions=pos, task_ids=tids)
  np.testing.assert_allclose(out, naive, atol=1e-5)
  _, st = m.apply({"params": params}, packed, segment_ids=seg, positions=pos, task_ids=tids,
                  mutable=["routing"])
  np.testing.assert_allclose(st["routing"]["layers_0"]["attn"]["o"]["adapter"]["task_tokens"][0],
                             [0, 5, 4])
