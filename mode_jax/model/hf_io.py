"""Read and write HF-format checkpoints (config.json + *.safetensors) without torch.

    cfg, params = load_hf_checkpoint("/path/to/gemma-2b")          # plain (unboxed) arrays
    save_hf_checkpoint("/tmp/out", cfg, params)                     # opens in `transformers`

Supported `model_type`s: llama (incl. Llama 3.1 / 3.2 `llama3` RoPE scaling), qwen2 (incl.
sliding-window layers), qwen3, gemma (v1), gemma2, gemma3_text, and the text tower of a
multimodal gemma3 checkpoint (`text_config`; tensors under `language_model.model.` or
`model.language_model.`; the vision tower is skipped). Per-layer attention types come from
`layer_types` when the config has it, else from the family's rule (`_default_layer_types`).
Names/layouts: HF stores linear weights as [out, in]; here kernels are input-major and q/k/v/o
keep their head axes (see `layers`). Loading validates every tensor (shape, presence, no
leftovers) before returning, and every error names the file and the tensor.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Callable, Iterator, Optional

import flax.linen as nn
import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from mode_jax.atomic_io import atomic_directory, download, exists, is_remote, read_json
from mode_jax.model.config import ModelConfig, RopeScaling
from mode_jax.model.lazy_tensors import LazyTensor, is_lazy, stack as lazy_stack

_INDEX = "model.safetensors.index.json"
_SINGLE = "model.safetensors"
# Buffers some older checkpoints carry that hold no parameters.
_IGNORED_SUFFIXES = ("rotary_emb.inv_freq",)
_ARCH = {"llama": "LlamaForCausalLM", "qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM",
         "gemma": "GemmaForCausalLM", "gemma2": "Gemma2ForCausalLM",
         "gemma3_text": "Gemma3ForCausalLM"}
_GEMMAS = ("gemma", "gemma2", "gemma3_text")
# What each family's config.json can express: these switches are fixed by the model_type.
_FAMILY = {
    "llama": dict(norm_plus_one=False, embed_scale=False, qk_norm=False, post_norms=False),
    "qwen2": dict(norm_plus_one=False, embed_scale=False, qk_norm=False, post_norms=False,
                  qkv_bias=True),
    "qwen3": dict(norm_plus_one=False, embed_scale=False, qk_norm=True, post_norms=False),
    "gemma": dict(norm_plus_one=True, embed_scale=True, qk_norm=False, post_norms=False,
                  qkv_bias=False),
    "gemma2": dict(norm_plus_one=True, embed_scale=True, qk_norm=False, post_norms=True),
    "gemma3_text": dict(norm_plus_one=True, embed_scale=True, qk_norm=True, post_norms=True),
}
# Multimodal Gemma 3 checkpoints: where the text tower's tensors live, and what else is there.
_MM_PREFIXES = (("language_model.model.", "language_model.lm_head.weight"),
                ("model.language_model.", "lm_head.weight"))
_MM_OTHER = ("vision_tower.", "multi_modal_projector.", "model.vision_tower.",
             "model.multi_modal_projector.")


class CheckpointError(ValueError):
  """A checkpoint directory that cannot be read as the model it claims to be."""


_READ_ERRORS = (SafetensorError, OSError, ValueError)


def open_safetensors(file: str):
  """`safe_open(file)` (numpy); a truncated or corrupted file is a CheckpointError naming it."""
  try:
    return safe_open(file, framework="numpy")
  except _READ_ERRORS as e:
    raise CheckpointError(f"{file}: not a readable safetensors file ({e})") from e


def read_slice(handle, file: str, name: str):
  """`handle.get_slice(name)` (shape and dtype without reading); errors name the file."""
  try:
    return handle.get_slice(name)
  except _READ_ERRORS as e:
    raise CheckpointError(f"{file}: tensor {name!r} cannot be read ({e})") from e


def read_tensor(handle, file: str, name: str) -> np.ndarray:
  """One tensor of an open safetensors file; read errors name the file and the tensor."""
  try:
    return handle.get_tensor(name)
  except _READ_ERRORS as e:
    raise CheckpointError(f"{file}: tensor {name!r} cannot be read ({e})") from e


# ----------------------------------------------------------------------------- config.json


def _default_layer_types(mt: str, hf: dict, n: int) -> tuple:
  """Per-layer attention types when config.json has no `layer_types` (older exports), by the
  rules transformers applies: Gemma 2 alternates sliding / full starting with sliding; Gemma 3
  has one full layer every `sliding_window_pattern` (6) layers, the others sliding; Qwen2/3
  slide from layer `max_window_layers` on when `use_sliding_window`."""
  sl, full = "sliding_attention", "full_attention"
  if mt == "gemma2":
    return tuple(sl if i % 2 == 0 else full for i in range(n))
  if mt == "gemma3_text":
    pattern = int(hf.get("sliding_window_pattern") or hf.get("_sliding_window_pattern") or 6)
    return tuple(full if (i + 1) % pattern == 0 else sl for i in range(n))
  if mt in ("qwen2", "qwen3") and hf.get("use_sliding_window"):
    first = int(hf.get("max_window_layers", 0))
    return tuple(sl if i >= first else full for i in range(n))
  return ()


def _rope(rope: dict, where: str) -> tuple[float, RopeScaling]:
  theta = float(rope.get("rope_theta", 10_000.0))
  rope_type = rope.get("rope_type", rope.get("type", "default"))
  if rope_type not in ("default", "llama3", "linear"):
    raise CheckpointError(f"{where}: unsupported rope_type {rope_type!r}")
  if rope_type == "default":
    return theta, RopeScaling()
  return theta, RopeScaling(rope_type, factor=float(rope.get("factor", 1.0)),
                            low_freq_factor=float(rope.get("low_freq_factor", 1.0)),
                            high_freq_factor=float(rope.get("high_freq_factor", 4.0)),
                            original_max_position_embeddings=int(rope.get(
                                "original_max_position_embeddings", 8192)))


def _text_config(hf: dict, where: str) -> tuple[dict, str]:
  """(the text model's config, its model_type): multimodal Gemma 3 gives its text tower, with
  the top level's special token ids where the tower lacks them."""
  mt = hf.get("model_type")
  if mt == "gemma3":   # multimodal: the text tower
    if not isinstance(hf.get("text_config"), dict):
      raise CheckpointError(f"{where}: model_type 'gemma3' without a text_config")
    top = hf
    hf = dict(hf["text_config"], model_type="gemma3_text")
    for key in ("bos_token_id", "eos_token_id", "pad_token_id"):
      if hf.get(key) is None and top.get(key) is not None:
        hf[key] = top[key]
    mt = "gemma3_text"
  if mt not in _ARCH:
    raise CheckpointError(f"{where}: unsupported model_type {mt!r}; supported: "
                          f"{sorted(_ARCH) + ['gemma3']}")
  return hf, mt


def _rope_fields(hf: dict, mt: str, where: str) -> tuple[float, RopeScaling, Optional[float]]:
  """(global theta, scaling, local theta of sliding layers (Gemma 3) or None) from
  `rope_parameters` (transformers >= 5, per layer type for Gemma 3) or the legacy
  `rope_scaling` / `rope_theta` keys."""
  rope = dict(hf.get("rope_parameters") or {})
  local_rope = None
  if "full_attention" in rope or "sliding_attention" in rope:   # per layer type (Gemma 3)
    local_rope = rope.get("sliding_attention")
    rope = dict(rope.get("full_attention") or {})
  legacy = hf.get("rope_scaling") or {}                 # transformers < 5
  rope.update({k: v for k, v in legacy.items() if k not in rope})
  if "rope_theta" not in rope and "rope_theta" in hf:
    rope["rope_theta"] = hf["rope_theta"]
  theta, scaling = _rope(rope, where)
  if mt != "gemma3_text":
    return theta, scaling, None
  if local_rope is None:
    return theta, scaling, float(hf.get("rope_local_base_freq", 10_000.0))
  local_theta, local_scaling = _rope(local_rope, where)
  if local_scaling.rope_type != "default":
    raise CheckpointError(f"{where}: scaled RoPE on sliding layers is not supported")
  return theta, scaling, local_theta


_ACTIVATIONS = {"silu": "silu", "swish": "silu", "gelu_pytorch_tanh": "gelu_tanh",
                "gelu_tanh": "gelu_tanh", "gelu": "gelu"}


def _activation(hf: dict, mt: str, where: str) -> str:
  act = hf.get("hidden_activation") or hf.get("hidden_act") or "silu"
  if mt == "gemma" and act == "gelu":
    # Official Gemma v1 configs say hidden_act "gelu" but mean the tanh approximation;
    # transformers runs them with gelu_pytorch_tanh (GemmaConfig converts the legacy value).
    act = "gelu_pytorch_tanh"
  if act not in _ACTIVATIONS:
    raise CheckpointError(f"{where}: unsupported hidden_act {act!r}")
  return _ACTIVATIONS[act]


def config_from_hf(hf: dict, where: str = "config.json") -> ModelConfig:
  """Maps an HF `config.json` dict to a `ModelConfig` (errors name `where` and the key)."""
  hf, mt = _text_config(hf, where)

  def req(key):
    if key not in hf:
      raise CheckpointError(f"{where}: missing key {key!r}")
    return hf[key]

  heads = int(req("num_attention_heads"))
  embed = int(req("hidden_size"))
  n_layers = int(req("num_hidden_layers"))
  theta, scaling, rope_local_theta = _rope_fields(hf, mt, where)
  eos = hf.get("eos_token_id")
  extra_eos: tuple = ()
  if isinstance(eos, list):   # e.g. Llama-3-Instruct [<|end_of_text|>, <|eot_id|>]: keep all
    eos, extra_eos = (eos[0], tuple(eos[1:])) if eos else (None, ())
  is_gemma = mt in _GEMMAS
  attention_bias = bool(hf.get("attention_bias", False))
  layer_types = tuple(hf.get("layer_types") or _default_layer_types(mt, hf, n_layers))
  if "sliding_attention" not in layer_types:
    layer_types = ()
  window = hf.get("sliding_window") if layer_types else None
  if layer_types and window is None:
    raise CheckpointError(f"{where}: sliding_attention layers but no sliding_window")
  fam = _FAMILY[mt]
  qpas = hf.get("query_pre_attn_scalar") if mt in ("gemma2", "gemma3_text") else None
  try:
    return ModelConfig(
        vocab_size=int(req("vocab_size")), embed_dim=embed,
        num_layers=n_layers, num_heads=heads,
        num_kv_heads=int(hf.get("num_key_value_heads") or heads),
        head_dim=int(hf.get("head_dim") or embed // heads),
        mlp_dim=int(req("intermediate_size")), model_type=mt,
        activation=_activation(hf, mt, where),
        norm_eps=float(hf.get("rms_norm_eps", 1e-6)), norm_plus_one=fam["norm_plus_one"],
        embed_scale=fam["embed_scale"], qkv_bias=(mt == "qwen2") or attention_bias,
        o_bias=(mt == "llama") and attention_bias, mlp_bias=bool(hf.get("mlp_bias", False)),
        tie_embeddings=bool(hf.get("tie_word_embeddings", is_gemma)), rope_theta=theta,
        rope_scaling=scaling, max_seq_len=int(hf.get("max_position_embeddings", 2048)),
        bos_id=hf.get("bos_token_id"), eos_id=eos, extra_eos_ids=extra_eos,
        pad_id=int(hf["pad_token_id"]) if hf.get("pad_token_id") is not None else 0,
        layer_types=layer_types, sliding_window=None if window is None else int(window),
        rope_local_theta=rope_local_theta, qk_norm=fam["qk_norm"],
        post_norms=fam["post_norms"],
        query_pre_attn_scalar=None if qpas is None else float(qpas),
        attn_softcap=hf.get("attn_logit_softcapping") if is_gemma else None,
        final_softcap=hf.get("final_logit_softcapping") if is_gemma else None)
  except ValueError as e:
    raise CheckpointError(f"{where}: {e}") from e


def config_to_hf(cfg: ModelConfig, torch_dtype: str = "float32") -> dict:
  """The `config.json` dict `transformers` needs to rebuild `cfg`; a setting the family's
  config cannot express raises ValueError (never written silently)."""
  mt = cfg.model_type
  rope: dict[str, Any] = {"rope_type": cfg.rope_scaling.rope_type, "rope_theta": cfg.rope_theta}
  if cfg.rope_scaling.rope_type != "default":
    rs = cfg.rope_scaling
    rope.update(factor=rs.factor, low_freq_factor=rs.low_freq_factor,
                high_freq_factor=rs.high_freq_factor,
                original_max_position_embeddings=rs.original_max_position_embeddings)
  act = {"silu": "silu", "gelu_tanh": "gelu_pytorch_tanh", "gelu": "gelu"}[cfg.activation]
  if mt == "gemma" and act == "gelu":
    raise ValueError("config_to_hf: a gemma config.json cannot express exact GELU (transformers "
                     "reads hidden_act 'gelu' as the tanh approximation); use gelu_tanh")
  out = {
      "architectures": [_ARCH[mt]], "model_type": mt,
      "vocab_size": cfg.vocab_size, "hidden_size": cfg.embed_dim,
      "intermediate_size": cfg.mlp_dim, "num_hidden_layers": cfg.num_layers,
      "num_attention_heads": cfg.num_heads, "num_key_value_heads": cfg.num_kv_heads,
      "head_dim": cfg.head_dim, "hidden_act": act, "rms_norm_eps": cfg.norm_eps,
      "rope_theta": cfg.rope_theta, "rope_parameters": rope,
      "max_position_embeddings": cfg.max_seq_len, "tie_word_embeddings": cfg.tie_embeddings,
      "bos_token_id": cfg.bos_id,
      "eos_token_id": list(cfg.eos_ids) if len(cfg.eos_ids) > 1 else cfg.eos_id,
      "pad_token_id": cfg.pad_id,
      "torch_dtype": torch_dtype, "dtype": torch_dtype,
  }
  if cfg.rope_scaling.rope_type != "default":
    out["rope_scaling"] = dict(rope)
  if mt in _GEMMAS:
    out["hidden_activation"] = act
  if mt in ("llama", "qwen3"):
    out["attention_bias"] = cfg.o_bias if mt == "llama" else cfg.qkv_bias
  if mt == "llama":
    out["mlp_bias"] = cfg.mlp_bias
  layer_types = list(cfg.layer_types) or ["full_attention"] * cfg.num_layers
  sliding = cfg.has_local_layers
  if mt in ("gemma2", "gemma3_text", "qwen2", "qwen3"):
    out["layer_types"] = layer_types
    out["sliding_window"] = cfg.sliding_window
  if mt in ("qwen2", "qwen3"):
    out["use_sliding_window"] = sliding
    out["max_window_layers"] = (layer_types.index("sliding_attention") if sliding
                                else cfg.num_layers)
  if mt in ("gemma2", "gemma3_text"):
    qpas = float(cfg.query_pre_attn_scalar or cfg.head_dim)
    out["query_pre_attn_scalar"] = int(qpas) if qpas.is_integer() else qpas   # HF wants an int
    out["attn_logit_softcapping"] = cfg.attn_softcap
    out["final_logit_softcapping"] = cfg.final_softcap
  if mt == "gemma3_text":
    local = cfg.rope_local_theta if cfg.rope_local_theta is not None else cfg.rope_theta
    out["rope_parameters"] = {"full_attention": rope,
                              "sliding_attention": {"rope_type": "default", "rope_theta": local}}
    out["rope_local_base_freq"] = local
    out.pop("rope_scaling", None)
  # Settings this family's config cannot express must not be written silently.
  fixed = dict(_FAMILY[mt])
  if mt == "llama":
    fixed["qkv_bias"] = cfg.o_bias        # Llama's attention_bias biases q, k, v and o at once
  problems = [f"{k}={getattr(cfg, k)} (needs {v})" for k, v in fixed.items()
              if getattr(cfg, k) != v]
  if mt not in ("gemma2", "gemma3_text"):
    problems += [f"{k}={getattr(cfg, k)} (needs None)" for k in
                 ("attn_softcap", "final_softcap", "query_pre_attn_scalar")
                 if getattr(cfg, k) is not None]
  if mt in ("llama", "gemma") and sliding:
    problems.append("sliding-window layers (needs none)")
  if mt != "gemma3_text" and cfg.rope_local_theta is not None:
    problems.append(f"rope_local_theta={cfg.rope_local_theta} (needs None)")
  if problems:
    raise ValueError(f"ModelConfig cannot be written as model_type={mt!r}: "
                     + "; ".join(problems))
  return out


# ----------------------------------------------------------------------------- tensor names


def _layer_specs(cfg: ModelConfig, i: int) -> Iterator[tuple[str, tuple, tuple, int]]:
  """(hf_name, linen_path, linen_shape, n_in) for the tensors of layer i.

  n_in = 0: same layout in both; -1: HF stores it flattened (q/k/v biases); n_in > 0: a kernel whose first n_in Linen dims are the input,
  stored by HF transposed and flattened as [prod(out), prod(in)].
  """
  e, h, k, d, f = cfg.embed_dim, cfg.num_heads, cfg.num_kv_heads, cfg.head_dim, cfg.mlp_dim
  pre, lp = f"model.layers.{i}.", (f"layers_{i}",)
  yield pre + "input_layernorm.weight", lp + ("attn_norm", "scale"), (e,), 0
  if cfg.post_norms:   # Gemma 2/3 sandwich norms
    yield pre + "post_attention_layernorm.weight", lp + ("post_attn_norm", "scale"), (e,), 0
    yield pre + "pre_feedforward_layernorm.weight", lp + ("mlp_norm", "scale"), (e,), 0
    yield pre + "post_feedforward_layernorm.weight", lp + ("post_mlp_norm", "scale"), (e,), 0
  else:
    yield pre + "post_attention_layernorm.weight", lp + ("mlp_norm", "scale"), (e,), 0
  if cfg.qk_norm:
    yield pre + "self_attn.q_norm.weight", lp + ("attn", "q_norm", "scale"), (d,), 0
    yield pre + "self_attn.k_norm.weight", lp + ("attn", "k_norm", "scale"), (d,), 0
  for name, n in (("q", h), ("k", k), ("v", k)):
    yield pre + f"self_attn.{name}_proj.weight", lp + ("attn", name, "kernel"), (e, n, d), 1
    if cfg.qkv_bias:
      yield pre + f"self_attn.{name}_proj.bias", lp + ("attn", name, "bias"), (n, d), -1
  yield pre + "self_attn.o_proj.weight", lp + ("attn", "o", "kernel"), (h, d, e), 2
  if cfg.o_bias:
    yield pre + "self_attn.o_proj.bias", lp + ("attn", "o", "bias"), (e,), 0
  for name, shape in (("gate", (e, f)), ("up", (e, f)), ("down", (f, e))):
    yield pre + f"mlp.{name}_proj.weight", lp + ("mlp", name, "kernel"), shape, 1
    if cfg.mlp_bias:
      yield pre + f"mlp.{name}_proj.bias", lp + ("mlp", name, "bias"), shape[-1:], 0


def tensor_specs(cfg: ModelConfig) -> list[tuple[str, tuple, tuple, int]]:
  """Every HF tensor of `cfg`, with its Linen path, Linen shape and layout conversion."""
  specs = [("model.embed_tokens.weight", ("embedder", "embedding"),
            (cfg.vocab_size, cfg.embed_dim), 0),
           ("model.norm.weight", ("final_norm", "scale"), (cfg.embed_dim,), 0)]
  if not cfg.tie_embeddings:
    specs.append(("lm_head.weight", ("lm_head",), (cfg.embed_dim, cfg.vocab_size), 1))
  for i in range(cfg.num_layers):
    specs.extend(_layer_specs(cfg, i))
  return specs


def hf_shape(linen_shape: tuple, n_in: int) -> tuple:
  """The HF (PyTorch) shape of a Linen kernel: [out, in] with `n_in` input dims flattened
  (0: unchanged, -1: flattened to one dim)."""
  if n_in == 0:
    return tuple(linen_shape)
  if n_in == -1:
    return (int(np.prod(linen_shape)),)
  return (int(np.prod(linen_shape[n_in:])), int(np.prod(linen_shape[:n_in])))


def to_linen(arr: np.ndarray, linen_shape: tuple, n_in: int) -> np.ndarray:
  """An HF tensor reshaped (and transposed for kernels) to the Linen shape."""
  return arr.reshape(linen_shape) if n_in <= 0 else arr.T.reshape(linen_shape)


def _to_hf(arr: np.ndarray, linen_shape: tuple, n_in: int) -> np.ndarray:
  if n_in <= 0:
    return np.ascontiguousarray(arr.reshape(hf_shape(linen_shape, n_in)))
  out_in = hf_shape(linen_shape, n_in)
  return np.ascontiguousarray(arr.reshape(out_in[1], out_in[0]).T)


# ----------------------------------------------------------------------------- load


def _tensor_files(path: str) -> dict[str, str]:
  """Maps tensor name -> safetensors file, from the index or by scanning the files."""
  index = os.path.join(path, _INDEX)
  if os.path.exists(index):
    try:
      with open(index) as f:
        weight_map = json.load(f)["weight_map"]
    except (json.JSONDecodeError, KeyError) as e:
      raise CheckpointError(f"{index}: not a valid safetensors index ({e})") from e
    for fname in sorted(set(weight_map.values())):
      if not os.path.exists(os.path.join(path, fname)):
        raise CheckpointError(f"{index}: shard {fname!r} is missing from {path}")
    return dict(weight_map)
  files = sorted(f for f in os.listdir(path) if f.endswith(".safetensors"))
  if not files:
    raise CheckpointError(f"{path}: no *.safetensors files (and no {_INDEX})")
  out: dict[str, str] = {}
  for fname in files:
    with open_safetensors(os.path.join(path, fname)) as f:
      for name in f.keys():
        if name in out:
          raise CheckpointError(f"{path}: tensor {name!r} is in both {out[name]} and {fname}")
        out[name] = fname
  return out


def _text_tower(files: dict[str, str], path: str) -> tuple[dict[str, str], dict[str, str]]:
  """A multimodal Gemma 3 checkpoint's tensors under a text model's names (`model.layers...`),
  the vision tower and projector dropped: (name -> file, name -> name stored in the file)."""
  for prefix, head in _MM_PREFIXES:
    if prefix + "embed_tokens.weight" in files:
      break
  else:
    raise CheckpointError(f"{path}: model_type 'gemma3' but no text tower tensors under "
                          f"{' or '.join(p for p, _ in _MM_PREFIXES)}")
  out, stored = {}, {}
  for name, fname in files.items():
    new = ("model." + name[len(prefix):] if name.startswith(prefix) else
           "lm_head.weight" if name == head else None if name.startswith(_MM_OTHER) else name)
    if new is not None:
      out[new], stored[new] = fname, name
  return out, stored


def set_path(tree: dict, path: tuple, value) -> None:
  """Sets `tree[path[0]]...[path[-1]] = value`, creating the dicts on the way."""
  for p in path[:-1]:
    tree = tree.setdefault(p, {})
  tree[path[-1]] = value


def read_config(path: str) -> ModelConfig:
  """The `ModelConfig` of the checkpoint directory `path` (its config.json only)."""
  cfg_path = os.path.join(os.fspath(path), "config.json")
  if not exists(cfg_path):
    raise CheckpointError(f"{cfg_path}: missing (an HF checkpoint needs config.json)")
  return with_generation_config(config_from_hf(read_json(cfg_path, CheckpointError), cfg_path),
                                path)


def _tokenizer_config_eos(path: str) -> list:
  """The id of tokenizer_config.json's `eos_token` (a string or {"content": ...}), looked up
  in tokenizer.json's added tokens; [] when either file or the token is absent."""
  tc_path, tj_path = (os.path.join(path, f) for f in ("tokenizer_config.json",
                                                      "tokenizer.json"))
  if not (exists(tc_path) and exists(tj_path)):
    return []
  tok = read_json(tc_path, CheckpointError).get("eos_token")
  tok = tok.get("content") if isinstance(tok, dict) else tok
  if not isinstance(tok, str):
    return []
  added = read_json(tj_path, CheckpointError).get("added_tokens") or []
  return [int(t["id"]) for t in added if isinstance(t, dict) and t.get("content") == tok]


def with_generation_config(cfg: ModelConfig, path: str) -> ModelConfig:
  """`cfg` with the stop ids of `path/generation_config.json` and of tokenizer_config.json's
  `eos_token` added, where present: chat and instruction checkpoints list their end-of-turn ids
  there (Gemma 3: [1, 106]; Llama 3.2 Instruct: [128001, 128008, 128009]), often not in
  config.json. generation_config's bos_token_id fills a missing one."""
  gen_path = os.path.join(os.fspath(path), "generation_config.json")
  ids = _tokenizer_config_eos(os.fspath(path))
  gen = read_json(gen_path, CheckpointError) if exists(gen_path) else {}
  eos = gen.get("eos_token_id")
  eos = [] if eos is None else eos if isinstance(eos, list) else [eos]
  try:
    ids = [int(e) for e in eos] + ids
  except (TypeError, ValueError) as e:
    raise CheckpointError(f"{gen_path}: field 'eos_token_id' is not an id or a list of ids "
                          f"({eos!r})") from e
  if not ids and not gen:
    return cfg
  first = cfg.eos_id if cfg.eos_id is not None else (ids[0] if ids else None)
  extra = tuple(dict.fromkeys(list(cfg.extra_eos_ids) + [i for i in ids if i != first]))
  bos = cfg.bos_id if cfg.bos_id is not None else gen.get("bos_token_id")
  return cfg.replace(eos_id=first, extra_eos_ids=extra, bos_id=bos)


def _slice_reader(a) -> Callable:
  """The callback of `make_array_from_callback` for the host or lazy array `a`: a lazy one
  reads each distinct index once (devices holding the same replica share the read)."""
  if not is_lazy(a):
    return lambda idx: a[idx]
  seen: dict = {}

  def read(idx):
    key = tuple((s.start, s.stop, s.step) for s in idx)
    if key not in seen:
      seen[key] = a[idx]
    return seen[key]
  return read


def place(params: dict, shardings=None, *, where: str = "params") -> dict:
  """Host (numpy) params -> jax arrays: on the default device, or straight into `shardings`
  (a same-structure tree of `jax.sharding.Sharding`) with `jax.make_array_from_callback`, each
  device receiving only its slice (no whole copy on one device first)."""
  if shardings is None:
    return jax.tree.map(jnp.asarray, params)
  try:
    return jax.tree.map(
        lambda a, sh: jax.make_array_from_callback(a.shape, sh, _slice_reader(a)),
        params, shardings)
  except ValueError as e:
    raise CheckpointError(f"{where}: shardings do not match the parameter tree ({e})") from e


def load_hf_checkpoint(path: str, dtype=jnp.float32, *, scan_layers: bool = False,
                       config_overrides: Optional[dict] = None, shardings=None,
                       on_read: Optional[Callable[[int], None]] = None
                       ) -> tuple[ModelConfig, dict]:
  """Reads `path` (config.json + safetensors) -> (ModelConfig, params) as jnp arrays of `dtype`.

  Without `shardings` the arrays are on the default device; tensors are read and converted on
  the host one at a time. With `shardings` (a tree like the returned params, e.g. a run's
  frozen-base shardings) every parameter goes straight into its sharding and each device's
  slice is read from the file on its own (`lazy_tensors`: safetensors slices, so each host of
  a multi-host slice reads only what its devices hold, and no host holds the whole model).
  `on_read(nbytes)` is called for every read (per-host read accounting).
  `scan_layers=True` returns the layers stacked for `nn.scan`; `config_overrides` replace
  ModelConfig fields (e.g. {"dtype": "bfloat16", "remat": True}; the compute dtype, while
  `dtype` here is the dtype of the returned arrays, and the returned config's `param_dtype`).
  Raises `CheckpointError` naming the file and tensor on a missing file, unsupported
  model_type, a wrong shape, a missing tensor or an unexpected one; nothing is returned unless
  every tensor's shape checked out.
  """
  path = os.fspath(path)
  if is_remote(path):    # a bucket: copied whole to this host's disk, then read as a local one
    with tempfile.TemporaryDirectory(prefix="hf_checkpoint_") as local:
      try:
        download(path, local)
      except FileNotFoundError as e:
        raise CheckpointError(f"{path}: checkpoint directory does not exist") from e
      return load_hf_checkpoint(local, dtype, scan_layers=scan_layers,
                                config_overrides=config_overrides, shardings=shardings,
                                on_read=on_read)
  cfg_path = os.path.join(path, "config.json")
  if not os.path.isdir(path):
    raise CheckpointError(f"{path}: checkpoint directory does not exist")
  if not os.path.exists(cfg_path):
    raise CheckpointError(f"{cfg_path}: missing (an HF checkpoint needs config.json)")
  hf_cfg = read_json(cfg_path, CheckpointError)
  cfg = with_generation_config(config_from_hf(hf_cfg, cfg_path), path)
  files = _tensor_files(path)
  stored = {}                  # name in this module -> name in the file, where they differ
  if hf_cfg.get("model_type") == "gemma3":
    files, stored = _text_tower(files, path)
  host = host_dtype(dtype)
  lazy = shardings is not None

  params: dict = {}
  expected = set()
  handles: dict[str, Any] = {}
  try:
    for hf_name, lpath, lshape, n_in in tensor_specs(cfg):
      expected.add(hf_name)
      if hf_name not in files:
        raise CheckpointError(f"{path}: tensor {hf_name!r} is missing (needed for "
                              f"{'/'.join(lpath)})")
      fname = files[hf_name]
      if fname not in handles:
        handles[fname] = open_safetensors(os.path.join(path, fname))
      file, name = os.path.join(path, fname), stored.get(hf_name, hf_name)
      if lazy:     # placed into `shardings` slice by slice: read the shape only
        have = tuple(read_slice(handles[fname], file, name).get_shape())
      else:
        arr = read_tensor(handles[fname], file, name)
        have = tuple(arr.shape)
      want = hf_shape(lshape, n_in)
      if have != want:
        raise CheckpointError(f"{file}: tensor {hf_name!r} has shape {have}, expected {want} "
                              f"for this config.json")
      set_path(params, lpath,
               LazyTensor(lambda f=fname: handles[f], file, name, lshape, n_in, host,
                          on_read, CheckpointError)
               if lazy else to_linen(arr, lshape, n_in).astype(host, copy=False))
    _reject_unexpected(path, cfg, files, expected, stored, handles, params)
    return finish_load(cfg, params, dtype, scan_layers=scan_layers,
                       config_overrides=config_overrides, shardings=shardings, where=path)
  finally:
    handles.clear()


def _reject_unexpected(path, cfg, files, expected, stored, handles, params) -> None:
  """A CheckpointError naming the tensors of `files` the config does not use (a stored tied
  head is accepted only when it equals the embedding)."""
  extra = sorted(n for n in files if n not in expected and not n.endswith(_IGNORED_SUFFIXES))
  if cfg.tie_embeddings and "lm_head.weight" in extra:
    # Some exports store the tied head anyway; accept it only if it is the embedding.
    head_file = os.path.join(path, files["lm_head.weight"])
    f = handles.get(files["lm_head.weight"]) or open_safetensors(head_file)
    head = read_tensor(f, head_file, stored.get("lm_head.weight", "lm_head.weight"))
    emb = np.asarray(params["embedder"]["embedding"], dtype=head.dtype)
    if head.shape != emb.shape or not np.array_equal(head, emb):
      raise CheckpointError(f"{path}: tie_word_embeddings=true but lm_head.weight differs "
                            f"from model.embed_tokens.weight")
    extra.remove("lm_head.weight")
  if extra:
    raise CheckpointError(f"{path}: unexpected tensors not used by {cfg.model_type}: "
                          f"{', '.join(f'{n!r} ({files[n]})' for n in extra[:10])}"
                          + (f" and {len(extra) - 10} more" if len(extra) > 10 else ""))


def host_dtype(dtype):
  """The numpy dtype (ml_dtypes for bfloat16) host arrays of `dtype` are converted to."""
  name = jnp.dtype(dtype).name
  return _np_dtype(name) if name in ("float32", "bfloat16", "float16") else np.dtype(dtype)


def finish_load(cfg: ModelConfig, params: dict, dtype, *, scan_layers: bool,
                config_overrides: Optional[dict], shardings, where: str):
  """Host params of a loaded checkpoint -> (config describing them, placed jax arrays)."""
  if scan_layers:
    params = stack_layers(params, cfg.num_layers, stack=lazy_stack)
  params = place(params, shardings, where=where)
  # The config describes the arrays returned: param_dtype is `dtype` unless overridden (a
  # full fine-tune initialised from this config would otherwise build float32 state).
  overrides = dict({"param_dtype": jnp.dtype(dtype).name}, **(config_overrides or {}),
                   scan_layers=scan_layers)
  return cfg.replace(**overrides), params


# ----------------------------------------------------------------------------- save


def _np_dtype(name: str):
  return {"float32": np.float32, "bfloat16": ml_dtypes.bfloat16, "float16": np.float16}[name]


def save_hf_checkpoint(path: str, cfg: ModelConfig, params: dict, *,
                       dtype: str = "float32", max_shard_bytes: int = 5 * 2**30) -> None:
  """Writes `params` as an HF checkpoint at `path` (atomically: temp dir, then rename).

  Shards into several files with `model.safetensors.index.json` when the tensors exceed
  `max_shard_bytes`. Accepts stacked (scan) or per-layer params, boxed or not.
  """
  params = nn.meta.unbox(params)
  if "layers" in params:
    params = unstack_layers(params, cfg.num_layers)
  hf_cfg = config_to_hf(cfg, torch_dtype=dtype)
  npd = _np_dtype(dtype)
  tensors: dict[str, np.ndarray] = {}
  for hf_name, lpath, lshape, n_in in tensor_specs(cfg):
    node = params
    try:
      for p in lpath:
        node = node[p]
    except KeyError:
      raise KeyError(f"save_hf_checkpoint: params have no {'/'.join(lpath)} "
                     f"(needed for {hf_name})") from None
    arr = np.asarray(node)
    if arr.shape != tuple(lshape):
      raise ValueError(f"save_hf_checkpoint: {'/'.join(lpath)} has shape {arr.shape}, "
                       f"config needs {lshape}")
    tensors[hf_name] = _to_hf(arr.astype(npd), lshape, n_in)

  shards: list[dict[str, np.ndarray]] = [{}]
  size = 0
  for name, arr in tensors.items():
    if size and size + arr.nbytes > max_shard_bytes:
      shards.append({})
      size = 0
    shards[-1][name] = arr
    size += arr.nbytes

  with atomic_directory(path) as tmp:
    with open(os.path.join(tmp, "config.json"), "w") as f:
      json.dump(hf_cfg, f, indent=2)
    meta = {"format": "pt"}
    if len(shards) == 1:
      save_file(shards[0], os.path.join(tmp, _SINGLE), metadata=meta)
    else:
      weight_map = {}
      n = len(shards)
      for i, shard in enumerate(shards):
        fname = f"model-{i + 1:05d}-of-{n:05d}.safetensors"
        save_file(shard, os.path.join(tmp, fname), metadata=meta)
        weight_map.update({k: fname for k in shard})
      total = sum(a.nbytes for a in tensors.values())
      with open(os.path.join(tmp, _INDEX), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)


# ----------------------------------------------------------------------------- scan layout


def stack_layers(params: dict, num_layers: int, stack=jnp.stack) -> dict:
  """Per-layer params (layers_0..layers_{L-1}) -> stacked under `layers` (for scan_layers);
  `stack=np.stack` keeps host arrays on the host."""
  layers = [params[f"layers_{i}"] for i in range(num_layers)]
  out = {k: v for k, v in params.items() if not k.startswith("layers_")}
  out["layers"] = jax.tree.map(lambda *xs: stack(xs), *layers)
  return out


def unstack_layers(params: dict, num_layers: int) -> dict:
  """Inverse of `stack_layers`."""
  out = {k: v for k, v in params.items() if k != "layers"}
  for i in range(num_layers):
    out[f"layers_{i}"] = jax.tree.map(lambda x, i=i: x[i], params["layers"])
  return out
