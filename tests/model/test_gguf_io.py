"""GGUF import: tiny random HF models of each family written as GGUF files with gguf.GGUFWriter
(llama.cpp's conventions: permuted llama q/k rows, Gemma norms stored +1, quantized tensors),
loaded by `gguf_io.load_gguf` and compared with the HF model (float) and with transformers
loading the same GGUF file (quantized: both dequantize the same blocks); bad files."""

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
torch = pytest.importorskip("torch")

import jax.numpy as jnp  # noqa: E402

from conftest import make_hf_model  # noqa: E402
from mode_jax.model import Transformer, gguf_io, hf_io  # noqa: E402

Q = gguf.GGMLQuantizationType
_SL, _FULL = "sliding_attention", "full_attention"
# Tiny models that follow the rules a GGUF cannot state (Gemma 3: local base 10k, 5 local +
# 1 global, query_pre_attn_scalar = head_dim; Gemma 2: alternating, head_dim scale).
_KW = dict(hidden_size=64, intermediate_size=96, num_attention_heads=4, head_dim=16,
           vocab_size=97, max_position_embeddings=256)
CASES = {
    "llama": ("llama", "llama", dict(_KW, num_key_value_heads=2, num_hidden_layers=2)),
    "qwen2": ("qwen2", "qwen2", dict(_KW, num_key_value_heads=2, num_hidden_layers=2)),
    "qwen3": ("qwen3", "qwen3", dict(_KW, num_key_value_heads=2, num_hidden_layers=2)),
    "gemma2": ("gemma2", "gemma2", dict(_KW, num_key_value_heads=2, num_hidden_layers=2,
                                         sliding_window=4, query_pre_attn_scalar=16,
                                         layer_types=[_SL, _FULL])),
    # head_dim 256 as the real ones: transformers' GGUF loader takes Gemma3TextConfig's
    # default query_pre_attn_scalar 256 whatever the head_dim.
    "gemma3": ("gemma3_text", "gemma3", dict(
        _KW, num_attention_heads=2, num_key_value_heads=1, head_dim=256, num_hidden_layers=6,
        sliding_window=4, query_pre_attn_scalar=256, layer_types=[_SL] * 5 + [_FULL],
        rope_parameters={_SL: {"rope_type": "default", "rope_theta": 10_000.0},
                         _FULL: {"rope_type": "default", "rope_theta": 1e6}})),
}
_REVERSE = {v: k for k, v in gguf_io._LAYER_NAMES.items()}


def gguf_name(hf, arch):
  if hf in ("model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"):
    return {v: k for k, v in gguf_io._TOP_NAMES.items()}[hf]
  _, _, i, rest = hf.split(".", 3)
  if rest == ("pre_feedforward_layernorm.weight" if arch in ("gemma2", "gemma3")
              else "post_attention_layernorm.weight"):
    return f"blk.{i}.ffn_norm.weight"
  return f"blk.{i}.{_REVERSE[rest]}"


def permute(w, n_head):   # llama.cpp convert_hf_to_gguf LlamaModel.permute
  return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(
      w.shape)


def write_gguf(model, arch, path, qtype=None, drop=(), extra=None):
  cfg = model.config
  w = gguf.GGUFWriter(str(path), arch)
  w.add_context_length(cfg.max_position_embeddings)
  w.add_embedding_length(cfg.hidden_size)
  w.add_block_count(cfg.num_hidden_layers)
  w.add_feed_forward_length(cfg.intermediate_size)
  w.add_head_count(cfg.num_attention_heads)
  w.add_head_count_kv(cfg.num_key_value_heads)
  w.add_key_length(cfg.head_dim)
  w.add_value_length(cfg.head_dim)
  w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
  theta = (cfg.rope_parameters[_FULL] if _FULL in cfg.rope_parameters
           else cfg.rope_parameters)["rope_theta"]
  w.add_rope_freq_base(theta)
  if getattr(cfg, "sliding_window", None) and arch.startswith("gemma"):
    w.add_sliding_window(cfg.sliding_window)
  if arch == "gemma2":
    w.add_attn_logit_softcapping(cfg.attn_logit_softcapping)
    w.add_final_logit_softcapping(cfg.final_logit_softcapping)
  w.add_tokenizer_model("llama")
  w.add_token_list([f"<t{i}>" for i in range(cfg.vocab_size)])
  w.add_bos_token_id(2)
  w.add_eos_token_id(1)
  for name, t in model.state_dict().items():
    if (name == "lm_head.weight" and cfg.tie_word_embeddings) or name in drop:
      continue
    a = t.detach().numpy().astype(np.float32)
    if arch == "llama" and ("q_proj" in name or "k_proj" in name) and a.ndim == 2:
      a = permute(a, cfg.num_attention_heads if "q_proj" in name else cfg.num_key_value_heads)
    if arch.startswith("gemma") and name.endswith("norm.weight"):
      a = a + 1.0
    if qtype is not None and a.ndim == 2 and a.shape[1] % 32 == 0:
      w.add_tensor(gguf_name(name, arch), gguf.quants.quantize(a, qtype), raw_dtype=qtype)
    else:
      w.add_tensor(gguf_name(name, arch), a)
  for name, a in (extra or {}).items():
    w.add_tensor(name, a)
  w.write_header_to_file()
  w.write_kv_data_to_file()
  w.write_tensors_to_file()
  w.close()


TOKENS = np.random.RandomState(0).randint(3, 97, (2, 13)).astype(np.int32)


def ours(path):
  cfg, params = gguf_io.load_gguf(str(path))
  return cfg, np.asarray(Transformer(cfg).apply({"params": params}, jnp.asarray(TOKENS)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_float_gguf_matches_the_hf_model(case, tmp_path):
  family, arch, kw = CASES[case]
  model = make_hf_model(family, **kw)
  write_gguf(model, arch, tmp_path / "m.gguf")
  cfg, got = ours(tmp_path / "m.gguf")
  assert cfg.model_type == hf_io.config_from_hf(model.config.to_dict()).model_type
  with torch.no_grad():
    ref = model(torch.tensor(TOKENS, dtype=torch.long)).logits.numpy()
  np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
  # ... and it saves as a normal HF checkpoint with the same config.
  cfg2, _ = hf_io.load_hf_checkpoint(_saved(cfg, tmp_path))
  assert cfg2.replace(bos_id=None, eos_id=None, pad_id=0) == cfg.replace(
      bos_id=None, eos_id=None, pad_id=0)


def _saved(cfg, tmp_path):
  _, params = gguf_io.load_gguf(str(tmp_path / "m.gguf"))
  hf_io.save_hf_checkpoint(str(tmp_path / "hf"), cfg, params)
  return str(tmp_path / "hf")


# (qwen3 is not among them: transformers 5.24 reads no head_dim from a qwen3 GGUF.)
@pytest.mark.parametrize("case,qtype", [("llama", Q.Q8_0), ("gemma3", Q.Q5_0),
                                        ("qwen2", Q.Q4_0)])
def test_quantized_gguf_matches_transformers_loading_the_same_file(case, qtype, tmp_path):
  pytest.importorskip("accelerate")
  import transformers
  family, arch, kw = CASES[case]
  model = make_hf_model(family, **kw)
  write_gguf(model, arch, tmp_path / "m.gguf", qtype)
  kinds = {t.tensor_type for t in gguf.GGUFReader(str(tmp_path / "m.gguf")).tensors}
  assert qtype in kinds
  _, got = ours(tmp_path / "m.gguf")
  theirs = transformers.AutoModelForCausalLM.from_pretrained(
      str(tmp_path), gguf_file="m.gguf", dtype=torch.float32).eval()
  with torch.no_grad():
    ref = theirs(torch.tensor(TOKENS, dtype=torch.long)).logits.numpy()
    orig = model(torch.tensor(TOKENS, dtype=torch.long)).logits.numpy()
  np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
  assert np.abs(got - orig).max() > 1e-6      # the quantization error is really there


def test_bad_gguf_files_name_the_file_and_tensor(tmp_path):
  family, arch, kw = CASES["qwen3"]
  model = make_hf_model(family, **kw)
  path = tmp_path / "m.gguf"
  write_gguf(model, arch, path)
  with pytest.raises(gguf_io.GGUFError, match="does not exist"):
    gguf_io.load_gguf(str(tmp_path / "nope.gguf"))
  (tmp_path / "junk.gguf").write_bytes(b"GGUF" + b"\x00" * 7)
  with pytest.raises(gguf_io.GGUFError, match="junk.gguf: not a readable GGUF"):
    gguf_io.load_gguf(str(tmp_path / "junk.gguf"))
  meta = gguf_io.metadata(gguf.GGUFReader(str(path)))
  with pytest.raises(gguf_io.GGUFError, match="unsupported architecture 'mamba'"):
    gguf_io.config_from_gguf(dict(meta, **{"general.architecture": "mamba"}), [], "x.gguf")
  stray = {"blk.0.mystery.weight": np.ones(4, np.float32)}
  cases = [("a", ("model.layers.1.mlp.up_proj.weight",), stray,
            "a.gguf: tensor for 'model.layers.1.mlp.up_proj.weight'"),
           ("b", (), stray, "b.gguf: unexpected tensors for qwen3: 'blk.0.mystery"),
           ("c", ("model.layers.0.self_attn.q_norm.weight",),
            {"blk.0.attn_q_norm.weight": np.ones(7, np.float32)},
            "c.gguf: tensor 'blk.0.attn_q_norm.weight' has shape")]
  for name, drop, extra, message in cases:     # missing, unexpected, misshapen tensor
    write_gguf(model, arch, tmp_path / f"{name}.gguf", drop=drop, extra=extra)
    with pytest.raises(gguf_io.GGUFError, match=message):
      gguf_io.load_gguf(str(tmp_path / f"{name}.gguf"))
