"""HF checkpoint I/O: logits parity with `transformers`, exact round trips, sharding, errors."""

import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file

from conftest import HF_CASES
from mode_jax.model import Transformer, hf_io
from mode_jax.model.hf_io import CheckpointError


def torch_logits(model, tokens):
  with torch.no_grad():
    return model(torch.tensor(tokens, dtype=torch.long)).logits.numpy()


@pytest.mark.parametrize("case", sorted(HF_CASES))
def test_logits_match_transformers(hf_checkpoint, tokens, case):
  model, path = hf_checkpoint(case)
  cfg, params = hf_io.load_hf_checkpoint(path)
  ours = Transformer(cfg).apply({"params": params}, jnp.asarray(tokens))
  assert ours.dtype == jnp.float32 and ours.shape == (2, 13, 97)
  np.testing.assert_allclose(np.asarray(ours), torch_logits(model, tokens), atol=1e-4, rtol=0)


def test_config_fields_follow_family(hf_checkpoint):
  cfg, _ = hf_io.load_hf_checkpoint(hf_checkpoint("gemma_mqa")[1])
  assert (cfg.norm_plus_one, cfg.embed_scale, cfg.tie_embeddings, cfg.activation) == (
      True, True, True, "gelu_tanh")
  assert cfg.num_kv_heads == 1 and cfg.head_dim == 16
  cfg, _ = hf_io.load_hf_checkpoint(hf_checkpoint("qwen2_tied_bias")[1])
  assert cfg.qkv_bias and not cfg.o_bias and cfg.tie_embeddings
  cfg, _ = hf_io.load_hf_checkpoint(hf_checkpoint("llama_bias_rope31")[1])
  assert cfg.rope_scaling.rope_type == "llama3" and cfg.rope_scaling.factor == 8.0
  assert cfg.o_bias and cfg.mlp_bias


def test_gemma_v1_config_with_hidden_act_gelu_runs_tanh_gelu(hf_checkpoint, tokens):
  """Official Gemma v1 config.json files say hidden_act "gelu" (no hidden_activation);
  transformers runs them with the tanh approximation, so must we."""
  model, path = hf_checkpoint("gemma_mqa")
  cfg_path = os.path.join(path, "config.json")
  hf = json.load(open(cfg_path))
  hf.pop("hidden_activation", None)
  hf["hidden_act"] = "gelu"
  json.dump(hf, open(cfg_path, "w"))
  cfg, params = hf_io.load_hf_checkpoint(path)
  assert cfg.activation == "gelu_tanh"
  ours = Transformer(cfg).apply({"params": params}, jnp.asarray(tokens))
  np.testing.assert_allclose(np.asarray(ours), torch_logits(model, tokens), atol=1e-4, rtol=0)
  with pytest.raises(ValueError, match="exact GELU"):
    hf_io.config_to_hf(cfg.replace(activation="gelu"))


@pytest.mark.parametrize("case", sorted(HF_CASES))
def test_round_trip_is_exact_and_opens_in_transformers(hf_checkpoint, tokens, tmp_path, case):
  import transformers
  model, path = hf_checkpoint(case)
  cfg, params = hf_io.load_hf_checkpoint(path)
  out = tmp_path / "saved"
  hf_io.save_hf_checkpoint(str(out), cfg, params)
  cfg2, params2 = hf_io.load_hf_checkpoint(str(out))
  assert cfg2 == cfg
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
               params, params2)
  reloaded = transformers.AutoModelForCausalLM.from_pretrained(str(out)).eval()
  np.testing.assert_allclose(torch_logits(reloaded, tokens), torch_logits(model, tokens),
                             atol=1e-5, rtol=0)


def test_sharded_save_writes_index_and_loads(hf_checkpoint, tmp_path):
  _, path = hf_checkpoint("llama_gqa_headdim")
  cfg, params = hf_io.load_hf_checkpoint(path)
  out = tmp_path / "sharded"
  hf_io.save_hf_checkpoint(str(out), cfg, params, max_shard_bytes=20_000)
  index = json.loads((out / "model.safetensors.index.json").read_text())
  assert len(set(index["weight_map"].values())) > 2
  _, params2 = hf_io.load_hf_checkpoint(str(out))
  jax.tree.map(lambda a, b: np.testing.assert_array_equal(np.asarray(a), np.asarray(b)),
               params, params2)


def test_bfloat16_save_and_scan_layout(hf_checkpoint, tokens, tmp_path):
  _, path = hf_checkpoint("qwen2_tied_bias")
  cfg, params = hf_io.load_hf_checkpoint(path)
  hf_io.save_hf_checkpoint(str(tmp_path / "bf16"), cfg, params, dtype="bfloat16")
  raw = load_file(str(tmp_path / "bf16" / "model.safetensors"))
  assert str(raw["model.embed_tokens.weight"].dtype) == "bfloat16"
  cfg_s, params_s = hf_io.load_hf_checkpoint(path, scan_layers=True)
  assert params_s["layers"]["attn"]["q"]["kernel"].shape[0] == cfg.num_layers
  a = Transformer(cfg).apply({"params": params}, jnp.asarray(tokens))
  b = Transformer(cfg_s).apply({"params": params_s}, jnp.asarray(tokens))
  np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)


# ------------------------------------------------------------------------------------ errors


def _rewrite(path, fn):
  f = os.path.join(path, "model.safetensors")
  tensors = load_file(f)
  fn(tensors)
  save_file(tensors, f, metadata={"format": "pt"})


def test_loaded_config_param_dtype_is_the_arrays_dtype(hf_checkpoint, tokens):
  """Loading as bf16 returns a config whose param_dtype is bf16, so the model's own init (what a
  full fine-tune's train state is built from) has the dtypes of the loaded arrays."""
  _, path = hf_checkpoint("llama_gqa_headdim")
  cfg, params = hf_io.load_hf_checkpoint(path, dtype=jnp.bfloat16,
                                         config_overrides={"dtype": "bfloat16"})
  assert cfg.param_dtype == "bfloat16" and cfg.dtype == "bfloat16"
  abstract = jax.eval_shape(lambda: Transformer(cfg).init(jax.random.key(0), jnp.asarray(tokens)))
  import flax.linen as nn
  got = {a.dtype for a in jax.tree.leaves(params)}
  want = {a.dtype for a in jax.tree.leaves(nn.meta.unbox(abstract["params"]))}
  assert got == want == {jnp.dtype(jnp.bfloat16)}
  cfg32, _ = hf_io.load_hf_checkpoint(path, dtype=jnp.bfloat16,
                                      config_overrides={"param_dtype": "float32"})
  assert cfg32.param_dtype == "float32"      # an explicit override still wins


def test_missing_directory_and_config(tmp_path):
  with pytest.raises(CheckpointError, match="does not exist"):
    hf_io.load_hf_checkpoint(str(tmp_path / "nope"))
  (tmp_path / "empty").mkdir()
  with pytest.raises(CheckpointError, match=r"empty/config.json: missing"):
    hf_io.load_hf_checkpoint(str(tmp_path / "empty"))


def test_missing_safetensors(hf_checkpoint):
  _, path = hf_checkpoint("llama_gqa_headdim")
  os.remove(os.path.join(path, "model.safetensors"))
  with pytest.raises(CheckpointError, match="no \\*.safetensors"):
    hf_io.load_hf_checkpoint(path)


def test_unsupported_model_type(hf_checkpoint):
  _, path = hf_checkpoint("llama_gqa_headdim")
  cfg_file = os.path.join(path, "config.json")
  cfg = json.load(open(cfg_file))
  cfg["model_type"] = "mamba"
  json.dump(cfg, open(cfg_file, "w"))
  with pytest.raises(CheckpointError, match=r"config.json: unsupported model_type 'mamba'"):
    hf_io.load_hf_checkpoint(path)


def test_wrong_shape_names_file_and_tensor(hf_checkpoint):
  _, path = hf_checkpoint("llama_gqa_headdim")
  name = "model.layers.1.mlp.down_proj.weight"
  _rewrite(path, lambda t: t.__setitem__(name, t[name][:, :-1].copy()))
  with pytest.raises(CheckpointError, match=rf"model.safetensors: tensor '{name}' has shape"):
    hf_io.load_hf_checkpoint(path)


@pytest.mark.parametrize("damage", ["truncated", "garbage_header"])
def test_corrupted_safetensors_is_a_checkpoint_error_naming_the_file(hf_checkpoint, tmp_path,
                                                                     damage):
  """A cut-off download or a corrupted file raises CheckpointError naming the file (it used to
  be the library's bare SafetensorError), for the HF loader and for adapter exports."""
  _, path = hf_checkpoint("llama_gqa_headdim")
  f = os.path.join(path, "model.safetensors")
  data = open(f, "rb").read()
  bad = data[:len(data) // 2] if damage == "truncated" else b"\xff" * 16 + data[16:]
  open(f, "wb").write(bad)
  with pytest.raises(CheckpointError, match="model.safetensors"):
    hf_io.load_hf_checkpoint(path)
  from mode_jax import adapters
  ad = tmp_path / "adapter"
  acfg = adapters.AdapterConfig("lora", rank=2)
  adapters.save_adapter(str(ad), {"layers_0": {"attn": {"q": {"adapter": {
      "A": np.ones((4, 2), np.float32), "B": np.zeros((1, 2, 4), np.float32)}}}}}, acfg)
  w = ad / "adapter.safetensors"
  w.write_bytes(w.read_bytes()[:-8])
  with pytest.raises(CheckpointError, match="adapter.safetensors"):
    adapters.load_adapter(str(ad))


def test_missing_and_unexpected_tensors(hf_checkpoint):
  _, path = hf_checkpoint("llama_gqa_headdim")
  name = "model.layers.0.self_attn.k_proj.weight"
  _rewrite(path, lambda t: t.pop(name))
  with pytest.raises(CheckpointError, match=rf"tensor '{name}' is missing"):
    hf_io.load_hf_checkpoint(path)
  _, path = hf_checkpoint("qwen2_tied_bias")
  _rewrite(path, lambda t: t.__setitem__("model.layers.0.extra.weight", np.zeros(3, np.float32)))
  with pytest.raises(CheckpointError, match=r"unexpected tensors.*model.layers.0.extra.weight"):
    hf_io.load_hf_checkpoint(path)


def test_index_pointing_at_missing_shard(hf_checkpoint, tmp_path):
  _, path = hf_checkpoint("llama_gqa_headdim")
  cfg, params = hf_io.load_hf_checkpoint(path)
  out = tmp_path / "sharded"
  hf_io.save_hf_checkpoint(str(out), cfg, params, max_shard_bytes=20_000)
  os.remove(out / "model-00002-of-" f"{len(list(out.glob('model-*'))):05d}.safetensors")
  with pytest.raises(CheckpointError, match=r"index.json: shard 'model-00002-of-\d+"):
    hf_io.load_hf_checkpoint(str(out))


def test_untied_head_that_differs_is_rejected_when_tied(hf_checkpoint):
  _, path = hf_checkpoint("qwen2_tied_bias")
  _rewrite(path, lambda t: t.__setitem__(
      "lm_head.weight", t["model.embed_tokens.weight"] + 1.0))
  with pytest.raises(CheckpointError, match="lm_head.weight differs"):
    hf_io.load_hf_checkpoint(path)


_SHARDED_LOAD = """
import json, sys
import jax, numpy as np
from mode_jax.adapters import AdapterConfig, params as ap
from mode_jax.model import hf_io
from mode_jax.train import loop
path = sys.argv[1]
cfg = hf_io.read_config(path).replace(scan_layers=True)
tcfg = {"seed": 0, "lr": 1e-3, "warmup_steps": 0, "decay": "constant", "steps": 1,
        "optimizer": "adamw", "weight_decay": 0.0, "grad_clip": 0.0, "grad_accum": 1,
        "end_lr_frac": 0.0, "loss_chunk": 0, "loss_positions": 0}
class C(dict):
  __getattr__ = dict.__getitem__
  def get(self, k, d=None):
    return dict.get(self, k, d)
st = loop.setup(cfg, AdapterConfig("lora", rank=2), C(tcfg), mesh_cfg={"shape": (1, 8, 1)})
reads = []
_, sharded = hf_io.load_hf_checkpoint(path, scan_layers=True, shardings=st.frozen_sh,
                                      on_read=reads.append)
_, plain = hf_io.load_hf_checkpoint(path, scan_layers=True)
replicated = sum(a.nbytes for a, s in zip(jax.tree.leaves(plain), jax.tree.leaves(st.frozen_sh))
                 if s.is_fully_replicated)
same = all(np.array_equal(np.asarray(a), np.asarray(b))
           for a, b in zip(jax.tree.leaves(sharded), jax.tree.leaves(plain)))
placed = all(a.sharding == s for a, s in zip(jax.tree.leaves(sharded),
                                             jax.tree.leaves(st.frozen_sh)))
q = sharded["layers"]["attn"]["q"]["kernel"]
print(json.dumps({"same": same, "placed": placed, "q_shape": list(q.shape),
                  "read": sum(reads), "total": sum(a.nbytes for a in jax.tree.leaves(plain)),
                  "largest_read": max(reads), "replicated": replicated,
                  "largest": max(a.nbytes for a in jax.tree.leaves(plain)),
                  "q_shard": list(q.addressable_shards[0].data.shape),
                  "devices": len(q.sharding.device_set)}))
"""


def test_loading_places_tensors_straight_into_their_shardings(hf_checkpoint):
  """8 host devices (fresh process): loading with a run's FSDP shardings gives arrays with those
  shardings (each device holds its slice) and the values of a plain load; every device's slice
  is read from the file on its own (no read of a whole sharded tensor), each byte once."""
  import subprocess
  import sys
  _, path = hf_checkpoint("llama_gqa_headdim")
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=8",
             JAX_PLATFORMS="cpu")
  r = subprocess.run([sys.executable, "-c", _SHARDED_LOAD, path], capture_output=True,
                     text=True, env=env, timeout=300,
                     cwd=os.path.join(os.path.dirname(__file__), "..", ".."))
  assert r.returncode == 0, r.stderr[-3000:]
  res = json.loads(r.stdout.strip().splitlines()[-1])
  assert res["same"] and res["placed"] and res["devices"] == 8
  assert res["q_shard"][1] * 8 == res["q_shape"][1]          # embed (32) split 8 ways
  assert res["read"] == res["total"], res                    # each byte once, not per device
  assert res["largest_read"] * 8 <= max(res["largest"], 8 * res["replicated"]), res


def test_generation_config_adds_its_stop_ids(hf_checkpoint, tmp_path):
  _, path = hf_checkpoint("gemma_mqa")
  with open(os.path.join(path, "generation_config.json"), "w") as f:
    json.dump({"bos_token_id": 2, "eos_token_id": [1, 50, 106]}, f)
  cfg = hf_io.read_config(path)
  assert cfg.eos_ids[0] == 1 and set(cfg.eos_ids) == {1, 50, 106}
  assert hf_io.load_hf_checkpoint(path)[0].eos_ids == cfg.eos_ids
  with open(os.path.join(path, "generation_config.json"), "w") as f:
    json.dump({"eos_token_id": "oops"}, f)
  with pytest.raises(CheckpointError, match="generation_config.json: field 'eos_token_id'"):
    hf_io.read_config(path)


def test_tokenizer_config_eos_token_is_a_stop_id(hf_checkpoint):
  _, path = hf_checkpoint("qwen2_tied_bias")
  with open(os.path.join(path, "tokenizer_config.json"), "w") as f:
    json.dump({"eos_token": {"content": "<|im_end|>"}}, f)
  with open(os.path.join(path, "tokenizer.json"), "w") as f:
    json.dump({"added_tokens": [{"id": 90, "content": "<|im_end|>"},
                                {"id": 91, "content": "<|endoftext|>"}]}, f)
  cfg = hf_io.read_config(path)
  assert 90 in cfg.eos_ids and 91 not in cfg.eos_ids
