"""GGUF import (llama.cpp's file format) through the `gguf` package, llama.cpp's own reader.

    cfg, params = load_gguf("/path/model.gguf")            # ModelConfig + float32 jnp arrays
    save_hf_checkpoint("/tmp/hf", cfg, params)              # then a normal HF directory

Every tensor is dequantized by `gguf.quants.dequantize` (its own implementation of each quant
type: F32/F16/BF16, Q4_0..Q8_0, the K-quants, the IQ types), renamed to the HF tensor it came
from and laid out as `hf_io` does, so loading validates shapes and completeness exactly as an HF
checkpoint does. Architectures: gemma3 (text), gemma2, gemma, llama, qwen2, qwen3.

What llama.cpp's converter changed, undone here:
- llama: q and k rows are permuted for llama.cpp's RoPE layout (`_unpermute`, the inverse of
  convert_hf_to_gguf's `LlamaModel.permute`); qwen and gemma are stored unpermuted.
- gemma (all versions): every RMSNorm weight is stored with the +1 already added.
- Llama 3.1/3.2 RoPE scaling is stored as a `rope_freqs.weight` tensor of per-frequency divisors
  instead of metadata: the `llama3` rule is fitted to it (factor = largest divisor, the published
  low/high frequency factors 1 / 4 and original context 8192) and must reproduce it exactly.

What a GGUF does not say, taken from the family's published rules (the same llama.cpp applies):
- gemma3: the local (sliding) layers use RoPE base 10,000 unscaled; every 6th layer is global
  (layer i global iff (i + 1) % 6 == 0); attention scale is head_dim**-0.5
  (query_pre_attn_scalar = head_dim) except the 62-layer 27B model, which uses embed/heads.
- gemma2: layers alternate sliding / global starting with sliding; query_pre_attn_scalar as for
  gemma3 (27B: 46 layers, embed/heads); the soft-caps come from metadata when present, else the
  published 50 (attention) and 30 (final).
Errors name the file and, where it applies, the tensor.
"""

from __future__ import annotations

import os
from typing import Any, Optional

import jax.numpy as jnp
import numpy as np

from mode_jax.model import hf_io
from mode_jax.model.config import ModelConfig, RopeScaling
from mode_jax.model.layers import rope_inv_freq

ARCHITECTURES = {"gemma3": "gemma3_text", "gemma2": "gemma2", "gemma": "gemma",
                 "llama": "llama", "qwen2": "qwen2", "qwen3": "qwen3"}
_GEMMAS = ("gemma", "gemma2", "gemma3")

# GGUF tensor name (per layer: after "blk.{i}.") -> HF name (after "model.layers.{i}.").
_LAYER_NAMES = {
    "attn_norm.weight": "input_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight", "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight", "attn_output.weight": "self_attn.o_proj.weight",
    "attn_q.bias": "self_attn.q_proj.bias", "attn_k.bias": "self_attn.k_proj.bias",
    "attn_v.bias": "self_attn.v_proj.bias", "attn_output.bias": "self_attn.o_proj.bias",
    "attn_q_norm.weight": "self_attn.q_norm.weight",
    "attn_k_norm.weight": "self_attn.k_norm.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight", "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
    "ffn_gate.bias": "mlp.gate_proj.bias", "ffn_up.bias": "mlp.up_proj.bias",
    "ffn_down.bias": "mlp.down_proj.bias",
    "post_attention_norm.weight": "post_attention_layernorm.weight",
    "post_ffw_norm.weight": "post_feedforward_layernorm.weight",
}
_TOP_NAMES = {"token_embd.weight": "model.embed_tokens.weight",
              "output_norm.weight": "model.norm.weight", "output.weight": "lm_head.weight"}
_CONSUMED = ("rope_freqs.weight",)     # read into the config, not a parameter


class GGUFError(hf_io.CheckpointError):
  """A GGUF file that cannot be read as a supported model (names the file and tensor)."""


def open_reader(path: str):
  """A `gguf.GGUFReader` of `path`; a missing or unreadable file is a GGUFError naming it."""
  import gguf
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise GGUFError(f"{path}: GGUF file does not exist")
  try:
    return gguf.GGUFReader(path)
  except Exception as e:   # the reader raises ValueError / struct errors on damaged files
    raise GGUFError(f"{path}: not a readable GGUF file ({type(e).__name__}: {e})") from e


def metadata(reader) -> dict[str, Any]:
  """Every key-value field of an open `gguf.GGUFReader` as Python values."""
  return {k: f.contents() for k, f in reader.fields.items()}


def hf_name(gguf_name: str, arch: str) -> Optional[str]:
  """The HF tensor name a GGUF tensor came from (None: not a parameter we know)."""
  if gguf_name in _TOP_NAMES:
    return _TOP_NAMES[gguf_name]
  parts = gguf_name.split(".", 2)
  if len(parts) == 3 and parts[0] == "blk" and parts[1].isdigit():
    rest = parts[2]
    if rest == "ffn_norm.weight":   # before the MLP: Gemma 2/3 call it pre_feedforward
      rest_hf = ("pre_feedforward_layernorm.weight" if arch in ("gemma2", "gemma3")
                 else "post_attention_layernorm.weight")
    else:
      rest_hf = _LAYER_NAMES.get(rest)
    return None if rest_hf is None else f"model.layers.{parts[1]}.{rest_hf}"
  return None


def _f32(x) -> float:
  """A float32 metadata value as the decimal it was written from (1e-06, not 9.99999997e-07)."""
  return float(f"{float(x):.7g}")


def _layer_types(arch: str, n: int) -> tuple:
  sl, full = "sliding_attention", "full_attention"
  if arch == "gemma3":
    return tuple(full if (i + 1) % 6 == 0 else sl for i in range(n))
  if arch == "gemma2":
    return tuple(sl if i % 2 == 0 else full for i in range(n))
  return ()


def _llama3_scaling(freqs: np.ndarray, head_dim: int, theta: float, where: str) -> RopeScaling:
  """The `llama3` RoPE scaling that reproduces llama.cpp's `rope_freqs` divisors."""
  factor = float(np.max(freqs))
  rs = RopeScaling("llama3", factor=factor, low_freq_factor=1.0, high_freq_factor=4.0,
                   original_max_position_embeddings=8192)
  probe = ModelConfig(vocab_size=1, embed_dim=head_dim, num_layers=1, num_heads=1,
                      num_kv_heads=1, head_dim=head_dim, mlp_dim=1, rope_theta=theta,
                      rope_scaling=rs)
  plain = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
  implied = plain / np.asarray(rope_inv_freq(probe), np.float64)
  if freqs.shape != implied.shape or not np.allclose(freqs, implied, rtol=1e-4):
    raise GGUFError(f"{where}: tensor 'rope_freqs.weight' does not follow the llama3 RoPE "
                    f"scaling rule (factor {factor}, low 1, high 4, original 8192)")
  return rs


def config_from_gguf(meta: dict, tensor_names, where: str = "model.gguf",
                     rope_freqs: Optional[np.ndarray] = None) -> ModelConfig:
  """`ModelConfig` of a GGUF file from its metadata and tensor names (see the module doc)."""
  arch = meta.get("general.architecture")
  if arch not in ARCHITECTURES:
    raise GGUFError(f"{where}: unsupported architecture {arch!r}; supported: "
                    f"{sorted(ARCHITECTURES)}")
  names = set(tensor_names)

  def key(k, default=KeyError):
    full = f"{arch}.{k}"
    if full in meta:
      return meta[full]
    if default is KeyError:
      raise GGUFError(f"{where}: metadata key {full!r} is missing")
    return default

  embed, heads, n = int(key("embedding_length")), int(key("attention.head_count")), int(
      key("block_count"))
  kv = key("attention.head_count_kv", heads)
  head_dim = int(key("attention.key_length", embed // heads))
  tokens = meta.get("tokenizer.ggml.tokens")
  vocab = int(key("vocab_size", len(tokens) if tokens is not None else 0))
  if not vocab:
    raise GGUFError(f"{where}: no vocab_size and no tokenizer.ggml.tokens")
  theta = _f32(key("rope.freq_base", 10_000.0))
  scaling = RopeScaling()
  st = key("rope.scaling.type", None)
  if st not in (None, "none"):
    if st != "linear":
      raise GGUFError(f"{where}: unsupported RoPE scaling type {st!r}")
    scaling = RopeScaling("linear", factor=_f32(key("rope.scaling.factor")))
  if rope_freqs is not None:
    scaling = _llama3_scaling(rope_freqs, head_dim, theta, where)
  gemma = arch in _GEMMAS
  layer_types = _layer_types(arch, n)
  window = key("attention.sliding_window", None)
  if not layer_types and window is not None and arch in ("qwen2", "qwen3"):
    layer_types = ("sliding_attention",) * n   # llama.cpp: every layer slides when set
  if layer_types and window is None:
    raise GGUFError(f"{where}: {arch} needs metadata {arch}.attention.sliding_window")
  big = (arch == "gemma3" and n == 62) or (arch == "gemma2" and n == 46)   # the 27B models
  qpas = float(embed // heads if big else head_dim) if arch in ("gemma2", "gemma3") else None
  special = lambda k: meta.get(f"tokenizer.ggml.{k}")
  eot = special("eot_token_id")
  eos = special("eos_token_id")
  try:
    return ModelConfig(
        vocab_size=vocab, embed_dim=embed, num_layers=n, num_heads=heads,
        num_kv_heads=int(kv), head_dim=head_dim, mlp_dim=int(key("feed_forward_length")),
        model_type=ARCHITECTURES[arch], activation="gelu_tanh" if gemma else "silu",
        norm_eps=_f32(key("attention.layer_norm_rms_epsilon", 1e-6)), norm_plus_one=gemma,
        embed_scale=gemma, qkv_bias="blk.0.attn_q.bias" in names,
        o_bias="blk.0.attn_output.bias" in names, mlp_bias="blk.0.ffn_up.bias" in names,
        tie_embeddings="output.weight" not in names, rope_theta=theta, rope_scaling=scaling,
        max_seq_len=int(key("context_length", 2048)), bos_id=special("bos_token_id"),
        eos_id=eos, extra_eos_ids=(eot,) if eot is not None and eot != eos else (),
        pad_id=int(special("padding_token_id") or 0),
        layer_types=layer_types, sliding_window=None if not layer_types else int(window),
        rope_local_theta=10_000.0 if arch == "gemma3" else None,
        qk_norm=arch in ("gemma3", "qwen3"), post_norms=arch in ("gemma2", "gemma3"),
        query_pre_attn_scalar=qpas,
        attn_softcap=_f32(key("attn_logit_softcapping", 50.0)) if arch == "gemma2" else None,
        final_softcap=_f32(key("final_logit_softcapping", 30.0)) if arch == "gemma2" else None)
  except ValueError as e:
    raise GGUFError(f"{where}: {e}") from e


def _unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
  """Inverse of llama.cpp's q/k row permutation (rows [n_head * head_dim, ...])."""
  dim = w.shape[0] // n_head // 2
  return w.reshape(n_head, dim, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def dequantize(tensor, where: str) -> np.ndarray:
  """float32 values of a `gguf.ReaderTensor` in numpy (row-major, HF) order."""
  import gguf
  try:
    return np.asarray(gguf.quants.dequantize(tensor.data, tensor.tensor_type), np.float32)
  except NotImplementedError as e:
    raise GGUFError(f"{where}: tensor {tensor.name!r} has quant type "
                    f"{tensor.tensor_type.name}, which gguf cannot dequantize") from e


def load_gguf(path: str, dtype=jnp.float32, *, scan_layers: bool = False,
              config_overrides: Optional[dict] = None,
              shardings=None) -> tuple[ModelConfig, dict]:
  """Reads a GGUF file -> (ModelConfig, params as jnp arrays of `dtype`), like
  `hf_io.load_hf_checkpoint` (same arguments; nothing is returned unless every tensor is
  present, known and of the right shape)."""
  path = os.fspath(path)
  reader = open_reader(path)
  meta = metadata(reader)
  arch = meta.get("general.architecture")
  by_name = {t.name: t for t in reader.tensors}
  freqs = None
  if "rope_freqs.weight" in by_name:
    freqs = dequantize(by_name["rope_freqs.weight"], path).reshape(-1)
  cfg = config_from_gguf(meta, by_name, path, rope_freqs=freqs)
  renamed: dict[str, Any] = {}
  unknown = []
  for name, t in by_name.items():
    if name in _CONSUMED:
      continue
    hf = hf_name(name, arch)
    if hf is None:
      unknown.append(name)
    else:
      renamed[hf] = t
  host = hf_io.host_dtype(dtype)
  params: dict = {}
  expected = set()
  for name, lpath, lshape, n_in in hf_io.tensor_specs(cfg):
    expected.add(name)
    if name not in renamed:
      raise GGUFError(f"{path}: tensor for {name!r} ({'/'.join(lpath)}) is missing")
    t = renamed[name]
    arr = dequantize(t, path)
    want = hf_io.hf_shape(lshape, n_in)
    if arr.shape != want:
      raise GGUFError(f"{path}: tensor {t.name!r} has shape {arr.shape} (HF layout), expected "
                      f"{want}")
    if arch == "llama" and (".attn_q." in t.name or ".attn_k." in t.name):
      arr = _unpermute(arr, cfg.num_heads if ".attn_q." in t.name else cfg.num_kv_heads)
    if arch in _GEMMAS and name.endswith("norm.weight"):
      arr = arr - 1.0
    hf_io.set_path(params, lpath, hf_io.to_linen(arr, lshape, n_in).astype(host, copy=False))
  extra = sorted(unknown + [renamed[n].name for n in renamed if n not in expected])
  if extra:
    raise GGUFError(f"{path}: unexpected tensors for {arch}: {', '.join(map(repr, extra[:10]))}"
                    + (f" and {len(extra) - 10} more" if len(extra) > 10 else ""))
  return hf_io.finish_load(cfg, params, dtype, scan_layers=scan_layers,
                           config_overrides=config_overrides, shardings=shardings, where=path)


def write_float_copy(src: str, dst: str, dtype: str = "f32") -> str:
  """Writes `dst`: the GGUF `src` with the same metadata (architecture, tokenizer, ...) and
  every tensor dequantized to float32 ("f32") or float16 ("f16"), e.g. the float weights the
  project runs, for llama.cpp. Written beside `dst` and renamed (atomic); returns `dst`."""
  import gguf
  if dtype not in ("f32", "f16"):
    raise ValueError(f"write_float_copy: dtype must be 'f32' or 'f16', got {dtype!r}")
  reader = open_reader(src)
  arch = metadata(reader).get("general.architecture")
  tmp = f"{dst}.tmp{os.getpid()}"
  writer = gguf.GGUFWriter(tmp, arch)
  np_dtype = np.float32 if dtype == "f32" else np.float16
  for key, field in reader.fields.items():
    if key.startswith("GGUF.") or key in ("general.architecture", "general.file_type"):
      continue
    vtype = field.types[0]
    sub = field.types[1] if vtype == gguf.GGUFValueType.ARRAY else None
    writer.add_key_value(key, field.contents(), vtype, sub_type=sub)
  writer.add_file_type(gguf.LlamaFileType.ALL_F32 if dtype == "f32"
                       else gguf.LlamaFileType.MOSTLY_F16)
  for t in reader.tensors:
    values = dequantize(t, src)
    # 1-D tensors (norms) stay float32, as llama.cpp's own converter keeps them
    writer.add_tensor(t.name, values if values.ndim == 1 else values.astype(np_dtype))
  writer.write_header_to_file()
  writer.write_kv_data_to_file()
  writer.write_tensors_to_file()
  writer.close()
  os.replace(tmp, dst)
  return dst
